"""Is a URL's data on this node, and in which file (master-api.md 9.3)?

One answer for the whole library: the worker prefers a local replica and reads index
files and URLs directly (``disco.worker.inputs``), the ``disco://``/``dir://``/``http``
schemes read the local file instead of asking the node's HTTP server
(``disco.schemes.scheme_disco``), OOB reads prefer a local replica (``disco.oob``).

This module is imported at the start of every task: keep its imports light.
"""

from __future__ import annotations

import os
from typing import Any

#: Schemes whose URLs name data under a node's DISCO_DATA or DDFS_DATA.
NODE_SCHEMES = ("disco", "dir", "http", "https")


def active_task(task: Any = None) -> Any:
    """``task``, else the task the worker is running (``None`` outside a task)."""
    if task is not None:
        return task
    try:
        import disco.worker
    except ImportError:
        return None
    return getattr(disco.worker, "active_task", None)


def node_dirs(task: Any) -> tuple[str, str, str, str]:
    """(host, disco_port, disco_data, ddfs_data) of this node: the task's, else the
    settings' (no host)."""
    settings: Any = None

    def setting(key: str) -> str:
        nonlocal settings
        if settings is None:
            from disco.settings import DiscoSettings

            settings = DiscoSettings()
        return str(settings[key])

    host = getattr(task, "host", "") or ""
    port = getattr(task, "disco_port", None) or setting("DISCO_PORT")
    disco_data = getattr(task, "disco_data", "") or setting("DISCO_DATA")
    ddfs_data = getattr(task, "ddfs_data", "") or setting("DDFS_DATA")
    return host, str(port), disco_data, ddfs_data


def local_path(url: Any, task: Any = None) -> str | None:
    """The local file behind ``url`` on this node, or ``None``.

    A ``file://`` URL or an absolute path is its own file.  A ``disco://``/``dir://``
    URL, or an ``http(s)`` URL on this node's DISCO_PORT, names
    ``<DDFS_DATA>/<rest>`` for a path ``ddfs/<rest>`` and ``<DISCO_DATA>/<rest>``
    otherwise; that file is local when the URL's host is this node (the task's host)
    or when it exists.  ``task`` defaults to the running task, else the settings.
    Outside a task, a ``disco://``/``dir://`` URL of a node served from this process (an
    embedded master's, ``add_process_node``) names its file under that node's DISCO_DATA.
    """
    if isinstance(url, (bytes, bytearray, memoryview)):
        url = bytes(url).decode("utf-8", "surrogateescape")
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url if url.startswith("/") else None
    if scheme == "file":
        return rest
    if scheme not in NODE_SCHEMES:
        return None
    host, port, disco_data, ddfs_data = node_dirs(active_task(task))
    locstr, _, path = rest.partition("/")
    url_host, _, url_port = locstr.rsplit("@", 1)[-1].partition(":")
    if scheme in ("http", "https") and url_port != port:
        return None
    top, _, below = path.lstrip("/").partition("/")
    local = os.path.join(ddfs_data if top == "ddfs" else disco_data, below)
    if (host and url_host == host) or os.path.isfile(local):
        return local
    if top != "ddfs" and scheme in ("disco", "dir") and below.startswith(url_host + "/"):
        for data in list(_process_nodes):
            candidate = os.path.join(data, below)
            if os.path.isfile(candidate):
                return candidate
    return None


#: DISCO_DATA directories of the nodes this process serves (an embedded master's: it
#: lays out ``<DISCO_DATA>/<host>/...`` for every node host, 9.3): their files are read
#: directly rather than through this process's own HTTP server.
_process_nodes: dict[str, int] = {}


def add_process_node(disco_data: str) -> None:
    """Files under ``disco_data`` are this process's node data (until removed)."""
    _process_nodes[disco_data] = _process_nodes.get(disco_data, 0) + 1


def remove_process_node(disco_data: str) -> None:
    count = _process_nodes.pop(disco_data, 0) - 1
    if count > 0:
        _process_nodes[disco_data] = count
