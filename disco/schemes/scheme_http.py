"""``http://`` URLs (library.md 13).  A URL on ``DISCO_PORT`` whose data is on this node is
read from the local file, like ``disco://`` (master-api 9.3)."""

from __future__ import annotations

from typing import Any

from disco import comm
from disco.schemes import scheme_disco


def open(url: str, task: Any = None) -> Any:  # noqa: A001 - scheme API
    path = scheme_disco.local_path(url, task)
    if path is not None:
        return comm.open_local(path)
    return comm.open_url(url)


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    conn = open(url)
    return conn, len(conn), conn.url
