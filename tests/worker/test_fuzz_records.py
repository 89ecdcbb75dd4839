"""Fuzzing the record and index readers (issue 8.5).

The internal record format (16.1), the netstring format (16.2) and index lines (16.3,
on the worker and on the master) either read back what was written or raise
``DataError`` (``ValueError`` on the master), never another exception.  Mutated streams
keep their checksums, so corrupt hunks are caught before anything is unpickled.
"""

from __future__ import annotations

import io

from hypothesis import given
from hypothesis import strategies as st

from disco.error import DataError
from disco.fileutils import DiscoOutputStream, netstring_record
from disco.master.jobdata import parse_index_labels
from disco.worker.task_io import disco_input_stream, old_netstr_reader, parse_index_line
from tests.fuzzing import FUZZ

records = st.lists(
    st.tuples(st.text(max_size=20), st.binary(max_size=50) | st.integers() | st.text()),
    max_size=30,
)


def written(recs: list, version: int = 1) -> bytes:
    buf = io.BytesIO()
    out = DiscoOutputStream(buf, version=version)
    for key, value in recs:
        out.add(key, value)
    out.close()
    return buf.getvalue()


def read_all(data: bytes, **kw) -> list:
    try:
        return list(disco_input_stream(io.BytesIO(data), len(data), "fuzz://x", **kw))
    except DataError:
        return ["<refused>"]


@FUZZ
@given(records)
def test_written_records_read_back(recs):
    assert read_all(written(recs)) == [tuple(r) for r in recs]


@FUZZ
@given(records, st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6))
def test_mutated_record_streams(recs, edits):
    data = bytearray(written(recs))
    if not data:
        return
    for pos, byte in edits:
        data[pos % len(data)] = byte
    read_all(bytes(data))
    read_all(bytes(data), ignore_corrupt=True)


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    read_all(data)  # hunks carry a CRC: random payloads are refused before unpickling


@FUZZ
@given(
    st.lists(st.tuples(st.binary(max_size=20), st.binary(max_size=20)), max_size=10),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 127)), max_size=4),
    st.integers(0, 10**6),
)
def test_netstrings(pairs, edits, cut):
    data = bytearray(b"".join(netstring_record(k, v) for k, v in pairs))
    for pos, byte in edits:
        if data:
            data[pos % len(data)] = byte
    data = bytes(data[: cut % (len(data) + 1)] if edits else data)
    try:
        got = list(old_netstr_reader(io.BytesIO(data), len(data), "fuzz://x"))
    except DataError:
        return
    if not edits:
        assert len(got) == len(pairs)


@FUZZ
@given(st.binary(max_size=80))
def test_index_lines(line):
    try:
        entry = parse_index_line(line, "fuzz://index")
    except DataError:
        return
    assert entry is None or (isinstance(entry[0], int) and isinstance(entry[2], int))


@FUZZ
@given(st.text(max_size=200))
def test_master_index_labels(text):
    try:
        labels = parse_index_labels(text)
    except ValueError:
        return
    assert all(isinstance(label, int) and isinstance(size, int) for label, size in labels)
