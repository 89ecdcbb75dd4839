"""``DiscoOutputStream_v1.add_all(records)`` (issue 13 sort target): the bytes of one
``add(key, value)`` per record, hunks cut after the same records, whether a batch takes
the C path for fixed-size ``bytes`` records (``disco.flatrecords.flat_pickles``) or the
per-record one; and ``flat_pickles`` itself against ``pickle``."""

from __future__ import annotations

import io
import pickle
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disco.fileutils import DiscoOutputStream_v1
from disco.flatrecords import PICKLE_BATCH, flat_pickles
from disco.worker.task_io import disco_input_stream


class Bytes(bytes):
    """A bytes subclass: not flat, ``add`` pickles it with the memo."""


def added_one_by_one(records: list[Any], **kwargs: Any) -> bytes:
    stream = io.BytesIO()
    writer = DiscoOutputStream_v1(stream, **kwargs)
    for key, value in records:
        writer.add(key, value)
    writer.close()
    assert writer.size == len(stream.getvalue())
    return stream.getvalue()


def added_all(records: list[Any], **kwargs: Any) -> bytes:
    stream = io.BytesIO()
    writer = DiscoOutputStream_v1(stream, **kwargs)
    writer.add_all(iter(records))
    writer.close()
    assert writer.size == len(stream.getvalue())
    return stream.getvalue()


def fast_dumps(records: list[Any]) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, 4)
    pickler.fast = True
    for record in records:
        pickler.dump(record)
    return out.getvalue()


def fixed_records(seed: int, count: int, key_len: int, value_len: int) -> list[Any]:
    """``count`` records of random bytes, keys of ``key_len`` and values of ``value_len``."""
    rng = random.Random(seed)
    return [(rng.randbytes(key_len), rng.randbytes(value_len)) for _ in range(count)]


odd_record = st.one_of(
    st.tuples(st.text(max_size=5), st.integers()),
    st.tuples(st.binary(max_size=300), st.binary(max_size=300)),
    st.tuples(st.binary(max_size=3), st.none()),
    st.tuples(st.binary(min_size=4, max_size=4).map(Bytes), st.binary(max_size=4)),
    st.tuples(st.integers(0, 3), st.tuples(st.integers(), st.text(max_size=3))),
    st.just((b"", b"")),  # the same object twice
    st.just([b"0123456789", b"list record"]),
)


@st.composite
def record_lists(draw: Any) -> list[Any]:
    """Runs of fixed-size bytes records (the C path), now and then an odd record."""
    records: list[Any] = []
    for _ in range(draw(st.integers(1, 4))):
        key_len, value_len = draw(st.integers(0, 255)), draw(st.sampled_from([0, 1, 10, 90, 255]))
        count = draw(st.sampled_from([0, 1, 2, 999, 1000, 1001, 2500]))
        records += fixed_records(draw(st.integers(0, 99)), count, key_len, value_len)
        records += draw(st.lists(odd_record, max_size=3))
    return records


@settings(max_examples=60, deadline=None)
@given(record_lists(), st.sampled_from([0, 1, 117, 5000, 1 << 20]), st.sampled_from([0, 2]))
def test_add_all_writes_what_add_writes(records: list[Any], min_hunk_size: int, level: int) -> None:
    expected = added_one_by_one(records, min_hunk_size=min_hunk_size, compression_level=level)
    assert added_all(records, min_hunk_size=min_hunk_size, compression_level=level) == expected
    back = list(disco_input_stream(io.BytesIO(expected), None, "x"))
    assert back == [tuple(r) for r in records]


def test_add_all_of_many_fixed_size_records_cuts_the_hunks_of_add() -> None:
    """0.5's 1 MiB hunks of the sort's records: a hunk ends inside a batch every time."""
    records = [(b"%010d" % (i * 7919 % 10**9), b"  %086d\n" % i) for i in range(30_000)]
    assert flat_pickles(records[:PICKLE_BATCH]) is not None  # the C path is taken
    assert added_all(records) == added_one_by_one(records)


def test_add_all_with_max_record_size_refuses_as_add_does() -> None:
    records = [(b"k%d" % i, b"v" * (10 if i != 50 else 500)) for i in range(100)]
    for write in ("add", "add_all"):
        stream = io.BytesIO()
        writer = DiscoOutputStream_v1(stream, max_record_size=100)
        with pytest.raises(ValueError, match="larger than max_record_size"):
            if write == "add":
                for key, value in records:
                    writer.add(key, value)
            else:
                writer.add_all(records)
        writer.close()
        assert stream.getvalue() == added_one_by_one(records[:50])


@settings(max_examples=200, deadline=None)
@given(st.integers(2, PICKLE_BATCH), st.integers(0, 255), st.integers(0, 255), st.data())
def test_flat_pickles_are_the_fast_picklers_bytes(
    count: int, key_len: int, value_len: int, data: Any
) -> None:
    records = fixed_records(data.draw(st.integers(0, 99)), count, key_len, value_len)
    if key_len == value_len and data.draw(st.booleans()):
        at = data.draw(st.integers(0, count - 1))
        records[at] = (records[at][0], records[at][0])  # one object twice
    got = flat_pickles(records)
    if key_len == value_len and any(k is v for k, v in records):
        assert got is None
        return
    assert got is not None
    joined, size = got
    assert joined == fast_dumps(records)
    assert size * count == len(joined)


@pytest.mark.parametrize(
    "batch",
    [
        [(b"ab", b"v"), (b"abc", b"v")],  # key lengths differ
        [(b"ab", b"v"), (b"ab", b"vv")],  # value lengths differ
        [(b"ab", b"v"), (b"a", b"vv")],  # same total, another cut
        [(b"ab", b"v"), ("ab", b"v")],  # a str key
        [(b"ab", b"v"), (Bytes(b"ab"), b"v")],  # a bytes subclass
        [(b"ab", b"v"), [b"ab", b"v"]],  # a list record
        [(b"ab", b"v"), (b"ab", b"v", b"w")],  # three items
        [(b"ab", b"v"), (b"ab", bytearray(b"v"))],  # a bytearray
        [(b"ab", b"v"), (b"ab", (b"v",))],  # a tuple value
        [(b"ab", b"v"), (b"x" * 256, b"v")],  # a key of 256 bytes
        [(b"ab", b"cd"), (b"x", b"x")],  # one object twice (b"x" is a cached singleton)
        [(b"ab", b"v")],  # one record
        [(b"ab", b"v")] * (PICKLE_BATCH + 1),  # more than one list batch
        [(b"ab", lambda: None)] * 2,  # cannot be pickled
    ],
)
def test_flat_pickles_leave_other_batches_to_add(batch: list[Any]) -> None:
    assert flat_pickles(batch) is None


def test_add_all_writes_the_records_before_a_failing_iterable_as_add_would() -> None:
    records = [(b"%010d" % i, b"v" * 90) for i in range(1500)]

    def failing() -> Any:
        yield from records
        raise RuntimeError("the records failed")

    stream = io.BytesIO()
    writer = DiscoOutputStream_v1(stream, min_hunk_size=4096)
    with pytest.raises(RuntimeError):
        writer.add_all(failing())
    writer.close()
    assert stream.getvalue() == added_one_by_one(records, min_hunk_size=4096)
