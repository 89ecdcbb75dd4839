"""The hunks' deflate (``disco.compression``): ISA-L when the ``isal`` package is there,
the standard library's ``zlib`` otherwise; either way standard zlib streams (16.1).

What is checked: streams made by the fast path read back identically with the plain
``zlib`` module, and the other way round; a stream the fast decoder refuses gets
zlib's own verdict; records written by the record writer with either implementation
are read back by a reader that knows only the format and ``zlib``; without ``isal``
(or with ``DISCO_DEFLATE=zlib``) the standard library is used; and a write that fails
(a full disk) surfaces from the writer.  ``isal`` is a dependency of the package on
the platforms it has wheels for: its tests fail, rather than skip, where it is missing."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import pickle
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disco import compression
from disco.fileutils import DiscoOutputStream_v1
from disco.worker.task_io import disco_input_stream


@contextlib.contextmanager
def using(name: str) -> Iterator[None]:
    """``name``'s deflate for the block (the module's choice restored afterwards)."""
    was = compression.IMPLEMENTATION
    assert compression.use(name) == name
    try:
        yield
    finally:
        compression.use(was)


@pytest.fixture(params=["isal", "zlib"])
def deflate(request: Any) -> Iterator[str]:
    """Each implementation in turn."""
    with using(request.param):
        yield request.param


def plain_zlib_records(data: bytes) -> list[Any]:
    """The records of a file of the internal format (16.1), read with ``zlib`` and
    ``pickle`` only: header, CRC of the payload, one pickle after the other."""
    records, pos = [], 0
    while pos < len(data):
        _version, flag, crc, size = struct.unpack_from("<BBIQ", data, pos)
        payload = data[pos + 14 : pos + 14 + size]
        pos += 14 + size
        if size == 0:
            break
        payload = zlib.decompress(payload) if flag else payload
        assert zlib.crc32(payload) == crc
        stream = io.BytesIO(payload)
        while stream.tell() < len(payload):
            records.append(pickle.load(stream))
    assert pos == len(data)
    return records


payloads = st.one_of(
    st.binary(max_size=5000),
    st.lists(
        st.sampled_from([b"abc", b"\x00" * 7, b"record ", bytes(range(256))]), max_size=400
    ).map(b"".join),
)
levels = st.sampled_from([1, 2, 3, 5, 6, 9, -1])


@settings(max_examples=200, deadline=None)
@given(data=payloads, level=levels)
def test_fast_streams_are_zlib_streams(data: bytes, level: int) -> None:
    with using("isal"):
        made = compression.compress(data, level)
        assert zlib.decompress(made) == data
        assert compression.decompress(made) == data
        assert compression.crc32(data) == zlib.crc32(data)


@settings(max_examples=200, deadline=None)
@given(data=payloads, level=st.integers(0, 9))
def test_zlib_streams_read_by_the_fast_path(data: bytes, level: int) -> None:
    with using("isal"):
        assert compression.decompress(zlib.compress(data, level)) == data


@settings(max_examples=300, deadline=None)
@given(
    data=payloads, cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3)
)
def test_a_damaged_stream_gets_zlibs_verdict(data: bytes, cuts: list[tuple[int, int]]) -> None:
    """Bytes changed or the stream cut short: the result, or the ``zlib.error`` and its
    message, are those of ``zlib.decompress``."""
    damaged = bytearray(zlib.compress(data, 2))
    for at, byte in cuts:
        if not damaged:
            break
        if at % 2:
            del damaged[at % len(damaged) :]
        else:
            damaged[at % len(damaged)] = byte
    damaged_bytes = bytes(damaged)
    try:
        want: Any = zlib.decompress(damaged_bytes)
    except zlib.error as e:
        want = ("error", str(e))
    with using("isal"):
        try:
            got: Any = compression.decompress(damaged_bytes)
        except zlib.error as e:
            got = ("error", str(e))
    assert got == want


flat = st.one_of(st.binary(max_size=300), st.text(max_size=50), st.integers(), st.none())
records = st.lists(
    st.one_of(
        st.tuples(flat, flat),
        st.tuples(st.text(max_size=5), st.lists(st.integers(), max_size=5)),
    ),
    max_size=300,
)


@pytest.mark.parametrize("deflate_name", ["isal", "zlib"])
@settings(max_examples=100, deadline=None)
@given(records=records, min_hunk_size=st.sampled_from([0, 50, 700, 4096, 1 << 20]))
def test_written_records_read_back_with_plain_zlib(
    deflate_name: str, records: list[Any], min_hunk_size: int
) -> None:
    """Hunks of the writer (its buffer kept from hunk to hunk, written over) hold exactly
    the records added, for a reader with only ``zlib``, and for ours."""
    with using(deflate_name):
        check_written_records(records, min_hunk_size)


def check_written_records(records: list[Any], min_hunk_size: int) -> None:
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out, min_hunk_size=min_hunk_size)
    for key, value in records:
        writer.add(key, value)
        assert writer.hunk_size <= min_hunk_size  # flushed once past it
    writer.close()
    data = out.getvalue()
    assert writer.size == len(data)
    assert plain_zlib_records(data) == [tuple(r) for r in records]
    assert list(disco_input_stream(io.BytesIO(data), None, "x")) == [tuple(r) for r in records]


def test_a_large_hunk_then_small_ones_leave_nothing_stale(deflate: str) -> None:
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out, min_hunk_size=1000)
    records = [("big", "x" * 100_000)] + [("k%d" % i, i) for i in range(500)]
    for key, value in records:
        writer.add(key, value)
    writer.close()
    assert plain_zlib_records(out.getvalue()) == records


def test_the_buffer_of_a_huge_record_is_given_back(deflate: str) -> None:
    out = io.BytesIO()
    writer = DiscoOutputStream_v1(out, min_hunk_size=1000)
    writer.add("small", 1)
    writer.flush()
    kept = len(writer.hunk.getbuffer())
    writer.add("huge", b"x" * (8 << 20))  # flushed at once: 8 MiB of buffer
    assert writer.hunk_size == 0 and len(writer.hunk.getbuffer()) < (1 << 20)
    writer.add("after", 2)
    writer.close()
    assert kept > 0
    assert plain_zlib_records(out.getvalue()) == [
        ("small", 1),
        ("huge", b"x" * (8 << 20)),
        ("after", 2),
    ]


def test_without_isal_the_standard_library_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    was = compression.IMPLEMENTATION
    monkeypatch.setitem(sys.modules, "isal", None)  # import isal -> ImportError
    try:
        assert compression.use("isal") == "zlib"
        assert compression.compress is not None and compression.decompress is zlib.decompress
        assert compression.compress(b"abc" * 100, 2) == zlib.compress(b"abc" * 100, 2)
    finally:
        monkeypatch.undo()
        compression.use(was)


@pytest.mark.parametrize(("env", "want"), [(None, "isal"), ("zlib", "zlib"), ("isal", "isal")])
def test_the_environment_chooses(env: str | None, want: str) -> None:
    environ = {k: v for k, v in os.environ.items() if k != "DISCO_DEFLATE"}
    if env is not None:
        environ["DISCO_DEFLATE"] = env
    out = subprocess.run(
        [sys.executable, "-c", "from disco import compression; print(compression.IMPLEMENTATION)"],
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == want


def test_a_full_disk_fails_the_write(deflate: str) -> None:
    """/dev/full refuses every write with ENOSPC: the writer's flush raises it, from
    ``add`` once a hunk is full and from ``close``."""
    with open("/dev/full", "wb", buffering=0) as full:
        writer = DiscoOutputStream_v1(full, min_hunk_size=100)
        with pytest.raises(OSError) as e:
            for i in range(100):
                writer.add(b"key %d" % i, b"value" * 10)
        assert e.value.errno == errno.ENOSPC
        with pytest.raises(OSError) as e:
            writer.close()
        assert e.value.errno == errno.ENOSPC
