"""``Chunker.chunks`` (``disco.chunking``): batches and threads, the same bytes as the
record-at-a-time rule of ddfs.md 3.4 / library.md 16.1 (issue 13, DDFS chunk)."""

from __future__ import annotations

import io
import pickle
import random
from typing import Any

import pytest

from disco import chunking
from disco.fileutils import (
    HUNK_SIZE,
    RECORD_PICKLE_PROTOCOL,
    Chunker,
    DiscoOutputStream_v1,
    encode_hunk,
)
from disco.worker.task_io import chain_reader


def reference_chunks(records: list[Any], chunk_size: int, hunk_size: int, limit: int | None):
    """The rule one record at a time: before each record, close a chunk whose flushed
    hunks exceed chunk_size; flush a hunk after the record that takes it past hunk_size;
    each chunk ends with an empty hunk."""
    out, parts, flushed, pending, pending_size, added = [], [], 0, [], 0, False
    for record in records:
        if flushed > chunk_size:
            out.append(b"".join(parts) + encode_hunk(b""))  # pending is empty here
            parts, flushed, pending, pending_size = [], 0, [], 0
        data = pickle.dumps(record, RECORD_PICKLE_PROTOCOL)
        if limit is not None and len(data) > limit:
            raise ValueError(
                "Record of size %d is larger than max_record_size: %d" % (len(data), limit)
            )
        pending.append(data)
        pending_size += len(data)
        added = True
        if pending_size > hunk_size:
            hunk = encode_hunk(b"".join(pending))
            parts.append(hunk)
            flushed += len(hunk)
            pending, pending_size = [], 0
    if added:
        if pending:
            parts.append(encode_hunk(b"".join(pending)))
        out.append(b"".join(parts) + encode_hunk(b""))
    return out


def random_lines(rng: random.Random, n: int) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, 300)) + b"\n" for _ in range(n)]


@pytest.mark.parametrize("seed", range(6))
def test_chunks_are_the_bytes_of_the_record_at_a_time_rule(seed: int) -> None:
    rng = random.Random(seed)
    records: list[Any] = random_lines(rng, rng.randrange(1, 30000))
    if seed % 2:
        records = [(r[:5].decode("latin-1"), len(r)) for r in records]  # not only bytes
    hunk_size = rng.choice([1, 100, 4096, 65536])
    chunk_size = rng.choice([0, 1, 5000, 100000, 1 << 20])
    got = list(
        chunking.chunks(records, chunk_size, None, hunk_size, RECORD_PICKLE_PROTOCOL, encode_hunk)
    )
    assert got == reference_chunks(records, chunk_size, hunk_size, None)
    # record boundaries: every chunk reads back as whole records, in order
    assert [r for c in got for r in chain_reader(io.BytesIO(c), None, "u")] == records


def test_a_batch_boundary_inside_a_hunk_and_a_chunk() -> None:
    records = [b"x" * 50] * (3 * chunking.BATCH + 7)
    got = list(chunking.chunks(records, 20000, None, 3000, RECORD_PICKLE_PROTOCOL, encode_hunk))
    assert got == reference_chunks(records, 20000, 3000, None)
    assert len(got) >= 2


def test_default_sizes_match_the_stream_writer() -> None:
    """One chunk of a few MiB: the bytes DiscoOutputStream_v1 writes for the records."""
    rng = random.Random(7)
    lines = [b"%d %s\n" % (i, rng.randbytes(20).hex().encode()) for i in range(60000)]
    [chunk] = list(Chunker().chunks(lines))
    buf = io.BytesIO()
    out = DiscoOutputStream_v1(buf)
    for line in lines:
        out.append(line)
    out.close()
    assert len(lines[0]) * len(lines) > HUNK_SIZE  # several hunks
    assert chunk == buf.getvalue()


def test_nothing_in_no_chunk_out_and_large_record_refused() -> None:
    assert list(Chunker().chunks([])) == []
    with pytest.raises(ValueError, match="larger than max_record_size: 10"):
        list(Chunker(max_record_size=10).chunks([b"ok"] * 100 + [b"x" * 100]))
