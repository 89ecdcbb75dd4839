"""``disco://host/<path>`` (library.md 13, master-api 9.3).

Read the local file when the URL's host is the running task's host (``disco.worker.
active_task``) or when the path exists under this node's data directories; otherwise
fetch ``http://host:<DISCO_PORT>/<path>``.  ``dir://`` index URLs and ``http`` URLs on
``DISCO_PORT`` are located the same way (``local_path``).
"""

from __future__ import annotations

import os
from typing import Any

from disco import auth, comm
from disco.util import localize, netloc, schemesplit


def active_task(task: Any = None) -> Any:
    """``task``, else the task the worker is running (``None`` outside a task)."""
    if task is not None:
        return task
    try:
        from disco import worker
    except ImportError:
        return None
    return getattr(worker, "active_task", None)


def _node(task: Any) -> tuple[str, str, str, str]:
    """(host, disco_port, disco_data, ddfs_data) of this node."""
    from disco.settings import DiscoSettings

    settings: Any = None

    def setting(key: str) -> str:
        nonlocal settings
        if settings is None:
            settings = DiscoSettings()
        return str(settings[key])

    host = getattr(task, "host", "") or ""
    port = getattr(task, "disco_port", None) or setting("DISCO_PORT")
    disco_data = getattr(task, "disco_data", "") or setting("DISCO_DATA")
    ddfs_data = getattr(task, "ddfs_data", "") or setting("DDFS_DATA")
    return host, str(port), disco_data, ddfs_data


def _split(url: str) -> tuple[str, netloc, str]:
    scheme, rest = schemesplit(url)
    locstr, _, path = rest.partition("/")
    return scheme, netloc.parse(locstr), path


def local_path(url: str, task: Any = None) -> str | None:
    """The local file of a ``disco://``/``dir://`` URL (or ``http`` on DISCO_PORT) if the
    data is on this node, else ``None``."""
    scheme, loc, path = _split(url)
    task = active_task(task)
    host, port, disco_data, ddfs_data = _node(task)
    if scheme in ("http", "https") and loc.port != port:
        return None
    if scheme not in ("disco", "dir", "http", "https"):
        return None
    local = localize(path, ddfs_data=ddfs_data, disco_data=disco_data)
    if (host and loc.host == host) or os.path.isfile(local):
        return local
    return None


def http_url(url: str, task: Any = None) -> str:
    """``http://host:<DISCO_PORT>/<path>`` for a ``disco://`` or ``dir://`` URL."""
    _, loc, path = _split(url)
    _, port, _, _ = _node(active_task(task))
    return "http://%s:%s/%s" % (loc.host, loc.port or port, path)


def open(url: str, task: Any = None) -> Any:  # noqa: A001 - scheme API
    path = local_path(url, task)
    if path is not None:
        return comm.open_local(path)
    return comm.open_remote(http_url(url, task), headers=auth.headers())  # node data


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    f = open(url)
    return f, len(f), url
