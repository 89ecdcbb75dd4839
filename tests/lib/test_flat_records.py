"""Flat records pickled a batch at a time (``disco.flatrecords``, issue 13 sort target):
the record writer holds the flat records ``add`` gets and pickles them together, and its
bytes stay exactly those of one fast-mode ``Pickler.dump`` per record, in the same hunks
(the plain path, ``tests/lib/test_record_writer_bytes.py``'s reference)."""

from __future__ import annotations

import io
import pickle
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from disco.fileutils import DiscoOutputStream_v1
from disco.flatrecords import flat_pickles, uniform_records
from disco.worker.task_io import disco_input_stream
from tests.lib.test_record_writer_bytes import reference_bytes


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


short_bytes = st.binary(max_size=300)
short_text = st.text(max_size=120)  # some of them past 255 bytes of UTF-8
small_ints = st.integers(min_value=-3, max_value=300)
flat = st.one_of(
    short_bytes, short_text, small_ints, st.booleans(), st.none(), st.floats(allow_nan=False)
)


def one_kind(kind: Any) -> Any:
    return st.integers(1, 40).flatmap(lambda n: st.lists(kind, min_size=n, max_size=n))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(one_kind(short_bytes), one_kind(short_text), one_kind(small_ints), one_kind(flat)),
    st.one_of(one_kind(short_bytes), one_kind(short_text), one_kind(small_ints), one_kind(flat)),
)
def test_a_batch_is_the_pickler_bytes_or_none(keys: list[Any], values: list[Any]) -> None:
    n = min(len(keys), len(values))
    keys, values = keys[:n], values[:n]
    made = flat_pickles(keys, values)
    if made is not None:
        assert made == pickler_bytes(keys, values)


def test_the_common_shapes_take_the_batch_path() -> None:
    """Fixed-size bytes records (the sort), str keys with small counts (a word count),
    and records of varying lengths are made by the batch path, not refused."""
    for keys, values in [
        ([b"k%09d" % i for i in range(100)], [b"v" * 90] * 100),
        (["w%d" % i for i in range(100)], [i % 256 for i in range(100)]),
        ([b"x" * (i % 50) for i in range(100)], ["é" * (i % 7) for i in range(100)]),
    ]:
        made = flat_pickles(keys, values)
        assert made is not None
        assert made == pickler_bytes(keys, values)


records = st.lists(
    st.tuples(flat, st.one_of(flat, st.lists(st.integers(), max_size=3))), max_size=400
)


@settings(max_examples=150, deadline=None)
@given(records, st.sampled_from([0, 50, 700, 4096, 1 << 20]), st.data())
def test_the_writer_bytes_are_those_of_one_pickle_per_record(
    recs: list[tuple[Any, Any]], min_hunk_size: int, data: Any
) -> None:
    """Held flat records, records that are not flat (pickled at once), ``append`` and
    ``flush`` in any order: the stream is byte for byte the reference writer's."""
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out, min_hunk_size=min_hunk_size)
    appended = data.draw(st.lists(st.booleans(), min_size=len(recs), max_size=len(recs)))
    for (key, value), by_append in zip(recs, appended, strict=True):
        if by_append:
            writer.append((key, value))
        else:
            writer.add(key, value)
    writer.close()
    reference = reference_records_bytes(recs, appended, min_hunk_size)
    assert out.getvalue() == reference
    assert writer.size == len(reference)
    assert list(disco_input_stream(io.BytesIO(out.getvalue()), None, "x")) == recs


def reference_records_bytes(
    recs: list[tuple[Any, Any]], appended: list[bool], min_hunk_size: int
) -> bytes:
    """The reference writer's bytes for records written by ``add`` or ``append``."""
    from disco.fileutils import encode_hunk
    from tests.lib.test_record_writer_bytes import record_pickle

    out, hunk = [], b""
    for record, by_append in zip(recs, appended, strict=True):
        hunk += record_pickle(record, added=not by_append)
        if len(hunk) > min_hunk_size:
            out.append(encode_hunk(hunk, 1, 2))
            hunk = b""
    if hunk:
        out.append(encode_hunk(hunk, 1, 2))
    out.append(encode_hunk(b"", 1, 2))
    return b"".join(out)


def test_many_records_across_batches_and_hunks() -> None:
    recs = [(b"%010d" % i, b"payload %d " % i * (i % 9)) for i in range(20_000)]
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out, min_hunk_size=64 * 1024)
    for key, value in recs:
        writer.add(key, value)
    writer.close()
    assert out.getvalue() == reference_bytes(recs, 64 * 1024)


def test_held_records_are_written_before_a_flush() -> None:
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out)
    writer.add(b"a", b"b")
    writer.flush()
    assert list(disco_input_stream(io.BytesIO(out.getvalue()), None, "x")) == [(b"a", b"b")]


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
