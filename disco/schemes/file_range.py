"""A byte range of a local file as an input: ``<file URL or path>#range=<start>-<end>``.

The client cuts a large local input into line-aligned ranges, one map task each
(``disco.worker.classic.input_split``); the task reads only bytes ``[start, end)`` of the
file.  A range URL is the file's own URL (``file:///path`` or a bare ``/path``) with the
suffix ``#range=<start>-<end>``; a file whose real name ends like that is read whole
(the name on disk wins), so no existing input changes meaning (docs/decisions.md).
"""

from __future__ import annotations

import io
import os
import re
from typing import Any

from disco.error import DataError

_RANGE = re.compile(r"^(?P<path>.*)#range=(?P<start>\d+)-(?P<end>\d+)$", re.S)
BUFFER_SIZE = 1 << 20  # one read per MiB: iterating lines is C code over the buffer


def range_url(url: str, start: int, end: int) -> str:
    """The URL of bytes ``[start, end)`` of the local file input ``url``."""
    return "%s#range=%d-%d" % (url, start, end)


def parse_range(path: str) -> tuple[str, int, int] | None:
    """``(path, start, end)`` when ``path`` names a range of a file (and no file of
    that exact name exists), else ``None``."""
    m = _RANGE.match(path)
    if m is None or os.path.exists(path):
        return None
    start, end = int(m.group("start")), int(m.group("end"))
    if end < start:
        raise DataError("Invalid byte range %d-%d" % (start, end), path)
    return m.group("path"), start, end


class _RangeIO(io.RawIOBase):
    """Unbuffered reads of bytes ``[start, end)`` of a file (``preadv``: no seeking)."""

    def __init__(self, path: str, start: int, end: int) -> None:
        super().__init__()
        self._fd = os.open(path, os.O_RDONLY)
        self._pos, self._end = start, end

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._end - self._pos)
        if n <= 0:
            return 0
        view = memoryview(buffer)[:n]
        got = os.preadv(self._fd, [view], self._pos)
        self._pos += got
        return got

    def fileno(self) -> int:
        return self._fd

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


class FileRange(io.BufferedReader):
    """Bytes ``[start, end)`` of a local file: ``read``, line iteration (newlines kept,
    as a whole file gives them), ``len()`` = the range's size, ``url``."""

    def __init__(self, path: str, start: int, end: int, url: str | None = None) -> None:
        super().__init__(_RangeIO(path, start, end), BUFFER_SIZE)
        self.path, self.start, self.end = path, start, end
        self.url = url or range_url("file://%s" % os.path.abspath(path), start, end)

    def __len__(self) -> int:
        return self.end - self.start


def open_range(path: str, start: int, end: int, url: str | None = None) -> FileRange:
    """``FileRange``; a missing or unreadable file is a ``DataError`` (as for a file)."""
    try:
        return FileRange(path, start, end, url)
    except OSError as e:
        raise DataError("Could not open %s: %s" % (path, e.strerror or e), path)
