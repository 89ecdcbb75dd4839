"""Records into chunks of the internal format, fast (``Chunker.chunks``, ``ddfs chunk``).

The bytes are exactly those of the record-at-a-time rule (ddfs.md 3.4, library.md
16.1): each record is ``pickle.dumps(record, 4)``; a hunk is flushed after the record
that takes its payload past ``HUNK_SIZE``; before each record, a chunk whose flushed
(compressed) hunks exceed ``chunk_size`` is closed; a chunk ends with an empty hunk.
Three things make it fast without changing a byte:

* records are pickled a batch at a time with ``map`` (no Python bytecode per record),
  and the hunk cuts are found in the running sizes with ``bisect``;
* hunks are compressed in threads (``zlib`` lets go of the GIL), a few ahead of the
  one being placed, so pickling and compressing use two cores;
* a chunk only ever closes at a hunk boundary (the check before a record can only turn
  true right after a flush), so chunks are assembled from the compressed hunks in order.
"""

from __future__ import annotations

import bisect
import itertools
import pickle
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: Records pickled at a time.
BATCH = 8192
#: Hunks being compressed ahead of the one placed into a chunk.
AHEAD = 4
COMPRESS_THREADS = 2


def hunk_payloads(
    records: Iterable[Any], hunk_size: int, max_record_size: int | None, protocol: int
) -> Iterator[tuple[bytes, bool]]:
    """``(payload, full)`` of each hunk in order: the concatenated record pickles, and
    whether the hunk was flushed for being full (the last one may not be)."""
    dumps, protocols = pickle.dumps, itertools.repeat(protocol)
    it = iter(records)
    carry: list[bytes] = []  # pickles of the hunk being filled
    carry_size = 0
    while True:
        batch = list(itertools.islice(it, BATCH))
        if not batch:
            break
        data = list(map(dumps, batch, protocols))
        sizes = list(map(len, data))
        if max_record_size is not None and max(sizes) > max_record_size:
            big = next(s for s in sizes if s > max_record_size)
            raise ValueError(
                "Record of size %d is larger than max_record_size: %d" % (big, max_record_size)
            )
        # ends[i]: the filling hunk's payload size once record i is in it
        ends = list(itertools.accumulate(sizes, initial=carry_size))[1:]
        start, base = 0, 0
        while True:
            cut = bisect.bisect_right(ends, base + hunk_size, lo=start)
            if cut >= len(ends):
                break
            carry.extend(data[start : cut + 1])
            yield b"".join(carry), True
            carry, start, base = [], cut + 1, ends[cut]
        carry.extend(data[start:])
        carry_size = ends[-1] - base if ends else carry_size
    if carry:
        yield b"".join(carry), False


def chunks(
    records: Iterable[Any],
    chunk_size: int,
    max_record_size: int | None,
    hunk_size: int,
    protocol: int,
    encode_hunk: Callable[[bytes], bytes],
) -> Iterator[bytes]:
    """The chunk bytes of ``records`` (see the module's rule); ``encode_hunk(payload)``
    makes one hunk."""
    empty = encode_hunk(b"")
    parts: list[bytes] = []  # the current chunk's encoded hunks
    flushed = 0  # the size of its full hunks
    ahead: deque[tuple[Future[bytes], bool]] = deque()
    with ThreadPoolExecutor(COMPRESS_THREADS, thread_name_prefix="chunk-zlib") as pool:
        try:
            payloads = hunk_payloads(records, hunk_size, max_record_size, protocol)
            for payload, full in itertools.chain(payloads, [(None, False)]):
                if payload is not None:
                    ahead.append((pool.submit(encode_hunk, payload), full))
                while ahead and (payload is None or len(ahead) > AHEAD):
                    future, was_full = ahead.popleft()
                    hunk = future.result()
                    if flushed > chunk_size:  # a record follows a chunk past its size
                        yield b"".join([*parts, empty])
                        parts, flushed = [], 0
                    parts.append(hunk)
                    if was_full:
                        flushed += len(hunk)
        finally:
            for future, _full in ahead:
                future.cancel()
    if parts:
        yield b"".join([*parts, empty])
