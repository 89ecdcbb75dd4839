"""Hunks of fixed-shape flat records read with one ``struct`` format
(``disco.flatrecords.uniform_records``, issue 13 sort target): the records are those
``pickle`` reads (the plain path), and any other payload is left to the unpickler."""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from disco.fileutils import DiscoOutputStream_v1
from disco.flatrecords import uniform_records
from disco.worker.task_io import disco_input_stream


def pickler_bytes(keys: list[Any], values: list[Any]) -> tuple[bytes, list[int]]:
    """The plain path: one fast-mode ``Pickler.dump`` per record."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, 4)
    pickler.fast = True
    sizes = []
    for key, value in zip(keys, values, strict=True):
        start = out.tell()
        pickler.dump((key, value))
        sizes.append(out.tell() - start)
    return out.getvalue(), sizes


def unpickled(data: bytes) -> list[Any]:
    """The plain reading: ``pickle.load`` until the payload ends."""
    stream, out = io.BytesIO(data), []
    while stream.tell() < len(data):
        out.append(pickle.load(stream))
    return out


fixed_side = st.one_of(
    st.integers(0, 255).flatmap(lambda n: st.just(("bytes", n))),
    st.just(("int", 0)),
)


@settings(max_examples=300, deadline=None)
@given(fixed_side, fixed_side, st.integers(1, 60), st.data())
def test_uniform_records_read_what_pickle_reads(
    key_shape: tuple[str, int], value_shape: tuple[str, int], n: int, data: Any
) -> None:
    """A hunk of fixed-shape records is read by ``uniform_records`` as pickle reads it;
    with any one byte changed it is either still read as pickle reads it, or refused."""

    def objects(shape: tuple[str, int]) -> list[Any]:
        kind, size = shape
        if kind == "int":
            return data.draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
        return data.draw(st.lists(st.binary(min_size=size, max_size=size), min_size=n, max_size=n))

    keys, values = objects(key_shape), objects(value_shape)
    payload, _sizes = pickler_bytes(keys, values)
    assert uniform_records(payload) == list(zip(keys, values, strict=True))
    at = data.draw(st.integers(0, len(payload) - 1))
    changed = bytearray(payload)
    changed[at] = data.draw(st.integers(0, 255))
    got = uniform_records(bytes(changed))
    if got is not None:
        assert got == unpickled(bytes(changed))
    assert uniform_records(payload[:-1]) is None


def test_other_payloads_are_left_to_the_unpickler() -> None:
    mixed, _ = pickler_bytes([b"a", b"bb"], [b"x", b"y"])
    text, _ = pickler_bytes(["a", "b"], [b"x", b"y"])
    plain = pickle.dumps((b"a", b"b"), 4)  # with memo entries
    for payload in (mixed, text, plain, b"", b"\x80\x04junk" * 3):
        assert uniform_records(payload) is None


def test_a_length_that_runs_past_the_record_is_refused() -> None:
    # (b"", 0) with its key's length byte changed from 0 to 4 (found by hypothesis): the
    # length points past the record's end, where the reader once indexed past the data
    good, _ = pickler_bytes([b""], [0])
    assert good == b"\x80\x04\x95\x06\x00\x00\x00\x00\x00\x00\x00C\x00K\x00\x86."
    assert uniform_records(good) == [(b"", 0)]
    damaged = good[:12] + b"\x04" + good[13:]
    assert uniform_records(damaged) is None  # left to the unpickler (which fails on it)


def test_the_reader_gives_the_same_records_either_way() -> None:
    """``disco_input_stream`` reads fixed-shape hunks and other hunks of one file."""
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out, min_hunk_size=2000)
    recs: list[Any] = [(b"%010d" % i, b"v" * 90) for i in range(300)]
    recs += [("w%d" % i, i) for i in range(300)] + [(b"k", [1, 2])]
    for key, value in recs:
        writer.add(key, value)
    writer.close()
    assert list(disco_input_stream(io.BytesIO(out.getvalue()), None, "x")) == recs
    _version, _flag, _crc, size = struct.unpack_from("<BBIQ", out.getvalue())
    first_hunk = zlib.decompress(out.getvalue()[14 : 14 + size])
    assert uniform_records(first_hunk) == recs[: len(first_hunk) // 117]  # the fast path
