"""``file://<path>`` and bare paths: a file on the node running the task (master-api 9.3).

``<path>#range=<start>-<end>`` reads only those bytes of the file (``file_range``): the
map tasks of a large local input split by the client.
"""

from __future__ import annotations

from typing import Any

from disco import comm
from disco.schemes.file_range import open_range, parse_range


def path_of(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def open(url: str, task: Any = None) -> Any:  # noqa: A001 - scheme API
    path = path_of(url)
    ranged = parse_range(path)
    if ranged is not None:
        return open_range(*ranged, url=url)
    return comm.open_local(path)


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    f = open(url)
    return f, len(f), url
