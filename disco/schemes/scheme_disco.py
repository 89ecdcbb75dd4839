"""``disco://host/<path>`` (library.md 13, master-api 9.3).

Read the local file when the URL's host is the running task's host (``disco.worker.
active_task``) or when the path exists under this node's data directories; otherwise
fetch ``http://host:<DISCO_PORT>/<path>``.  ``dir://`` index URLs and ``http`` URLs on
``DISCO_PORT`` are located the same way (``local_path``, ``disco.locality``'s).
"""

from __future__ import annotations

from typing import Any

from disco import auth, comm
from disco.locality import active_task, local_path, node_dirs
from disco.util import netloc, schemesplit

__all__ = ["active_task", "http_url", "input_stream", "local_path", "open"]


def _split(url: str) -> tuple[str, netloc, str]:
    scheme, rest = schemesplit(url)
    locstr, _, path = rest.partition("/")
    return scheme, netloc.parse(locstr), path


def http_url(url: str, task: Any = None) -> str:
    """``http://host:<DISCO_PORT>/<path>`` for a ``disco://`` or ``dir://`` URL."""
    _, loc, path = _split(url)
    _, port, _, _ = node_dirs(active_task(task))
    return "http://%s:%s/%s" % (loc.host, loc.port or port, path)


def open(url: str, task: Any = None) -> Any:  # noqa: A001 - scheme API
    path = local_path(url, task)
    if path is not None:
        return comm.open_local(path)
    return comm.open_remote(http_url(url, task), headers=auth.headers())  # node data


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    f = open(url)
    return f, len(f), url
