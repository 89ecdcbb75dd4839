"""Large local inputs become several map tasks: line-aligned byte ranges (issue 13).

On the client, when a classic job has a ``map`` read with the default line reader
(no ``map_reader``, the default ``map_input_stream``), each input that is one
``file://`` URL or bare absolute path of a regular file on this machine larger than
``split_size`` bytes is replaced by consecutive ranges of about ``split_size`` bytes
(``<url>#range=<start>-<end>``, read by ``disco.schemes.file_range``).  Every cut is
right after a ``\\n``, so each line is read whole, exactly once, by one task, in file
order: the map sees the same lines, in the same order, as it would from the whole file.
A job with its own reader keeps its inputs whole (a reader of gzip, netstrings or any
other format cannot start in the middle of a file).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from disco.locality import local_path
from disco.schemes.file_range import range_url

DEFAULT_SPLIT_SIZE = 32 << 20  # bytes per map task of a large local file
_SCAN = 1 << 16  # bytes read at a time looking for the line end after a cut point


def local_file(url: Any) -> str | None:
    """The path of a ``file://`` URL or bare absolute path naming a regular file here
    (``disco.locality.local_path`` of such a URL; ranges and other schemes excluded)."""
    if not isinstance(url, str) or "#" in url or not url.startswith(("/", "file://")):
        return None
    path = local_path(url)
    if path is None or "://" in path or not os.path.isabs(path):
        return None
    return path if os.path.isfile(path) else None


def line_cuts(path: str, split_size: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` covering the file, each cut right after a newline at or
    after a multiple of ``split_size`` (empty ranges left out)."""
    size = os.path.getsize(path)
    if split_size <= 0 or size <= split_size:
        return [(0, size)]
    cuts = [0]
    with open(path, "rb") as f:
        for nominal in range(split_size, size, split_size):
            if nominal <= cuts[-1]:
                continue  # a long line already reached past this point
            cut = _line_end_after(f, nominal - 1, size)
            if cut >= size:
                break
            if cut > cuts[-1]:
                cuts.append(cut)
    cuts.append(size)
    return list(zip(cuts, cuts[1:], strict=False))


def _line_end_after(f: Any, offset: int, size: int) -> int:
    """The offset just after the first ``\\n`` at or after ``offset`` (``size`` if none)."""
    f.seek(offset)
    pos = offset
    while True:
        block = f.read(_SCAN)
        if not block:
            return size
        i = block.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(block)


def split_inputs(inputs: Iterable[Any], split_size: int) -> list[Any]:
    """``inputs`` with every large local file input replaced by its ranges."""
    out: list[Any] = []
    for inp in inputs:
        path = local_file(inp) if split_size and split_size > 0 else None
        ranges = line_cuts(path, split_size) if path is not None else []
        if len(ranges) > 1:
            out.extend(range_url(inp, start, end) for start, end in ranges)
        else:
            out.append(inp)
    return out


def splittable(map_reader: Any, map_input_stream: Any) -> bool:
    """Does the job read its map inputs as lines with the default streams?"""
    from disco.worker.task_io import task_input_stream

    if map_reader is not None:
        return False
    streams = [map_input_stream] if callable(map_input_stream) else list(map_input_stream or ())
    return streams == [task_input_stream]
