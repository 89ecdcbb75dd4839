"""``file://<path>`` and bare paths: a file on the node running the task (master-api 9.3)."""

from __future__ import annotations

from typing import Any

from disco import comm


def path_of(url: str) -> str:
    return url[len("file://") :] if url.startswith("file://") else url


def open(url: str, task: Any = None) -> comm.File:  # noqa: A001 - scheme API
    return comm.open_local(path_of(url))


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    f = open(url)
    return f, len(f), url
