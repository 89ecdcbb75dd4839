"""``raw://<data>``: the text after ``raw://`` is the input itself (library.md 13)."""

from __future__ import annotations

import io
from typing import Any

from disco.util import schemesplit


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[io.StringIO, int, str]:
    data = schemesplit(url)[1]  # no URL-decoding (0.5 behaviour)
    return io.StringIO(data), len(data), url


def open(url: str, task: Any = None) -> io.BytesIO:  # noqa: A001 - scheme API
    return io.BytesIO(schemesplit(url)[1].encode("utf-8"))
