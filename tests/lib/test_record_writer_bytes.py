"""The record writer (``DiscoOutputStream_v1``) keeps its picklers per stream (issue 13):
its bytes must be exactly those of the format's definition (16.1), one pickle of protocol
4 per record in hunks flushed once they pass ``min_hunk_size``.  The pickle of a record is
``pickle.dumps``'s, except for a flat ``(key, value)`` written with ``add`` (two distinct
bytes/str/int/float/bool/None objects): its unused memo entries are left out, as
``pickletools.optimize`` leaves them out (so readers can unpickle a hunk in one go)."""

from __future__ import annotations

import io
import pickle
import pickletools
import random
from typing import Any

import pytest

from disco.fileutils import RECORD_PICKLE_PROTOCOL, DiscoOutputStream_v1, encode_hunk
from disco.worker.task_io import disco_input_stream

FLAT = (bytes, str, int, float, bool, type(None))


def record_pickle(record: Any, added: bool) -> bytes:
    """The pickle of one record by the format's definition (see the module docstring)."""
    data = pickle.dumps(record, RECORD_PICKLE_PROTOCOL)
    key, value = record
    if added and type(key) in FLAT and type(value) in FLAT and key is not value:
        return pickletools.optimize(data)
    return data


def reference_bytes(
    records: list[Any], min_hunk_size: int, level: int = 2, added: bool = True
) -> bytes:
    """The format written out from its definition, one pickle per record."""
    out, hunk = [], b""
    for record in records:
        hunk += record_pickle(record, added)
        if len(hunk) > min_hunk_size:
            out.append(encode_hunk(hunk, 1, level))
            hunk = b""
    if hunk:
        out.append(encode_hunk(hunk, 1, level))
    out.append(encode_hunk(b"", 1, level))
    return b"".join(out)


def sample_records(n: int = 5000) -> list[Any]:
    rng = random.Random(7)
    shared = ["shared", "shared"]  # the same object twice in one record: memo references
    records: list[Any] = [("word", 1), (b"bytes", -5), ("é漢😀", 2**80), ("k", None)]
    records += [(shared, shared), ((1, 2.5), {"a": [1, 2]}), ("big", "x" * 200_000)]
    for i in range(n):
        records.append(("w%d" % rng.randint(0, 999), rng.randint(0, 10**6)))
        if i % 97 == 0:
            records.append((b"%d" % i, ("nested", i, [i] * 3)))
    return records


@pytest.mark.parametrize("min_hunk_size", [0, 100, 4096, 1 << 20])
@pytest.mark.parametrize("method", ["add", "append"])
def test_identical_bytes_for_a_sample_of_records(min_hunk_size: int, method: str) -> None:
    records = sample_records()
    stream = io.BytesIO()
    writer = DiscoOutputStream_v1(stream, min_hunk_size=min_hunk_size)
    for key, value in records:
        if method == "add":
            writer.add(key, value)
        else:
            writer.append((key, value))
    writer.close()
    assert stream.getvalue() == reference_bytes(records, min_hunk_size, added=method == "add")
    assert writer.size == len(stream.getvalue())
    assert list(disco_input_stream(io.BytesIO(stream.getvalue()), None, "x")) == records


def test_a_record_that_fails_leaves_nothing_behind() -> None:
    records = sample_records(300)
    stream = io.BytesIO()
    writer = DiscoOutputStream_v1(stream, min_hunk_size=1000, max_record_size=100_000)
    for i, (key, value) in enumerate(records):
        if i == 10:
            with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
                writer.add("bad", lambda: None)  # cannot be pickled
            with pytest.raises(TypeError):
                writer.add("bad", ["x" * 70_000, (x for x in ())])  # fails after a part was written
        if key == "big":
            with pytest.raises(ValueError, match="larger than max_record_size"):
                writer.add(key, value)
            continue
        writer.add(key, value)
    writer.close()
    kept = [r for r in records if r[0] != "big"]
    assert stream.getvalue() == reference_bytes(kept, 1000)


def test_flat_records_have_no_memo_and_others_keep_their_sharing() -> None:
    """add() of flat pairs writes memo-free pickles; a pair holding one object twice, a
    key that is the value, and containers are pickled as before (shared stays shared)."""
    shared = ["x"]
    s = "same"
    stream = io.BytesIO()
    writer = DiscoOutputStream_v1(stream)
    for key, value in [(b"k", b"v"), ("k", 1), (1.5, None), (True, "t")]:
        writer.add(key, value)
    writer.add(s, s)
    writer.add("k", (shared, shared))
    writer.close()
    [back_same, back_shared] = list(disco_input_stream(io.BytesIO(stream.getvalue()), None, "x"))[
        4:
    ]
    assert back_same[0] is back_same[1]
    assert back_shared[1][0] is back_shared[1][1]
    flat = b"".join(pickletools.optimize(pickle.dumps(r, 4)) for r in [(b"k", b"v"), ("k", 1)])
    assert flat in zlib_payloads(stream.getvalue())


def zlib_payloads(data: bytes) -> bytes:
    import struct
    import zlib

    out, pos = [], 0
    while pos < len(data):
        _v, flag, _crc, size = struct.unpack_from("<BBIQ", data, pos)
        payload = data[pos + 14 : pos + 14 + size]
        out.append(zlib.decompress(payload) if flag else payload)
        pos += 14 + size
    return b"".join(out)
