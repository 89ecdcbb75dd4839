"""Reading a hunk's records in one go (``disco.worker.task_io.hunk_records``, issue 13).

One unpickler loads the records of a hunk in turn; that equals ``pickle.load`` of each
record only while no record uses the memo.  The reader must give the records of
``pickle.load`` one by one in every case: memo-free hunks (what ``add`` writes for flat
records) through the fast path, anything else (0.5's protocol 1, ``pickle.dumps`` with
memo references, records with persistent ids) through the careful one."""

from __future__ import annotations

import io
import pickle
import random
import zlib

import pytest

from disco.error import DataError
from disco.fileutils import DiscoOutputStream_v1, encode_hunk
from disco.worker.task_io import disco_input_stream, hunk_records


def read(data: bytes) -> list:
    return list(disco_input_stream(io.BytesIO(data), None, "x"))


def one_hunk(pickles: list[bytes]) -> bytes:
    return encode_hunk(b"".join(pickles)) + encode_hunk(b"")


def test_flat_records_written_by_add_are_read_in_one_go() -> None:
    rng = random.Random(5)
    recs = [(rng.randbytes(10), rng.randbytes(rng.randrange(90))) for _ in range(3000)]
    recs += [("w%d" % i, i) for i in range(3000)] + [(1.5, None), (True, "")]
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out)
    for key, value in recs:
        writer.add(key, value)
    writer.close()
    payload = zlib.decompress(out.getvalue()[14:])
    fast = hunk_records(payload)
    assert fast == recs
    assert read(out.getvalue()) == recs


def test_memo_references_across_records_are_not_mixed_up() -> None:
    # each record refers to its own first object (BINGET 0): one unpickler kept for the
    # hunk would hand the second record the first record's object
    x, y = "x" * 3, "y" * 3
    pickles = [pickle.dumps((x, x), 4), pickle.dumps((y, y), 4)]
    payload = b"".join(pickles)
    assert hunk_records(payload) is None
    assert read(one_hunk(pickles)) == [("xxx", "xxx"), ("yyy", "yyy")]


def test_memo_first_appearing_in_a_later_record_falls_back_for_the_hunk() -> None:
    z = ["z"]
    recs = [(b"k%d" % i, b"v") for i in range(100)] + [("shared", (z, z))]
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out)
    for key, value in recs:
        writer.add(key, value)
    writer.close()
    assert hunk_records(zlib.decompress(out.getvalue()[14:])) is None
    back = read(out.getvalue())
    assert back == recs and back[-1][1][0] is back[-1][1][1]


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_protocol_reads_as_pickle_load_gives_it(protocol: int) -> None:
    recs = [("k%d" % (i % 7), [i, "v"]) for i in range(500)] + [(b"b", b"b")]
    pickles = [pickle.dumps(r, protocol) for r in recs]
    assert read(one_hunk(pickles)) == recs


def test_a_record_with_a_persistent_id_is_an_error_as_before() -> None:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, 4)
    pickler.persistent_id = lambda obj: "disco.hunk_end" if obj == "END" else None
    pickler.dump(("a", "END"))
    pickles = [pickle.dumps((b"k", b"v"), 4), out.getvalue(), pickle.dumps((b"l", b"w"), 4)]
    assert hunk_records(b"".join(pickles)) is None  # stops early: not every byte read
    with pytest.raises(DataError, match="cannot unpickle a record"):
        read(one_hunk(pickles))


def test_empty_and_truncated_payloads() -> None:
    assert hunk_records(b"") == []
    data = pickle.dumps((b"k", b"v"), 4)
    assert hunk_records(data[:-1]) is None
    with pytest.raises(DataError, match="cannot unpickle"):
        read(one_hunk([data[:-1]]))
