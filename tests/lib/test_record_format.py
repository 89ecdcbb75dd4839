"""The internal record format (library.md 16.1) and the netstring format (16.2), byte for byte."""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from collections.abc import Iterator

import pytest

from disco.error import DataError
from disco.fileutils import (
    HUNK_SIZE,
    RECORD_PICKLE_PROTOCOL,
    STORED_BELOW,
    Chunker,
    DiscoOutput,
    DiscoOutputStream,
    DiscoOutputStream_v0,
    DiscoOutputStream_v1,
)
from disco.worker.task_io import chain_reader, disco_input_stream, old_netstr_reader
from tests.lib.test_compression import using


def write_records(records, **kw) -> bytes:
    out = io.BytesIO()
    w = DiscoOutputStream_v1(out, **kw)
    for r in records:
        w.append(r)
    w.close()
    return out.getvalue()


def hunks(data: bytes) -> list[tuple[int, int, int, bytes]]:
    out, pos = [], 0
    while pos < len(data):
        version, flag, crc, size = struct.unpack_from("<BBIQ", data, pos)
        out.append((version, flag, crc, data[pos + 14 : pos + 14 + size]))
        pos += 14 + size
    assert pos == len(data)
    return out


@pytest.fixture
def stdlib_deflate() -> Iterator[None]:
    """Hunks deflated by the standard library's zlib, as 0.5 wrote them."""
    with using("zlib"):
        yield


def test_hunk_layout_byte_for_byte(stdlib_deflate: None) -> None:
    records = [(b"key", "value"), (1, (2, 3))]
    data = write_records(records)
    payload = b"".join(pickle.dumps(r, RECORD_PICKLE_PROTOCOL) for r in records)
    first = struct.pack("<BBIQ", 0x81, 1, zlib.crc32(payload), len(zlib.compress(payload, 2)))
    assert data.startswith(first + zlib.compress(payload, 2))
    # the trailing empty hunk: CRC of b"", compressed empty payload
    empty = zlib.compress(b"", 2)
    assert data.endswith(struct.pack("<BBIQ", 0x81, 1, 0, len(empty)) + empty)
    assert [h[0] for h in hunks(data)] == [0x81, 0x81]


def test_close_always_writes_one_empty_hunk() -> None:
    assert len(hunks(write_records([]))) == 1
    data = write_records([b"x"] * 3)
    assert [(zlib.decompress(h[3]) if h[1] else h[3]) == b"" for h in hunks(data)] == [
        False,
        True,
    ]


@pytest.fixture
def fast_deflate() -> Iterator[None]:
    """Hunks deflated by ``disco.compression``'s fast implementation (ISA-L, a dependency)."""
    with using("isal"):
        yield


def test_a_small_hunk_is_stored_and_a_large_one_deflated(fast_deflate: None) -> None:
    small = [("word", 1), ("other", 2)]
    payload = b"".join(pickle.dumps(r, RECORD_PICKLE_PROTOCOL) for r in small)
    assert len(payload) < STORED_BELOW
    data = write_records(small)
    first, last = hunks(data)
    assert first == (0x81, 0, zlib.crc32(payload), payload)  # stored: flag 0
    # the stream's end stays a deflated empty payload, whose length is not 0
    assert last == (0x81, 1, 0, zlib.compress(b"", 2))
    large = [("k%d" % i, i) for i in range(STORED_BELOW // 8)]
    (version, flag, crc, deflated), _end = hunks(write_records(large))
    payload = b"".join(pickle.dumps(r, RECORD_PICKLE_PROTOCOL) for r in large)
    assert len(payload) >= STORED_BELOW
    assert flag == 1 and zlib.decompress(deflated) == payload and crc == zlib.crc32(payload)
    assert list(disco_input_stream(io.BytesIO(data), None, "x")) == small


def test_stored_hunks_in_concatenated_files_are_all_read(fast_deflate: None) -> None:
    # the shuffle concatenates outputs byte-wise: each file's closing hunk must not
    # read as the end of everything
    a = write_records([(b"a", 1), (b"b", 2)])
    b = write_records([(b"c", 3)])
    assert hunks(a)[0][1] == 0 and hunks(b)[0][1] == 0
    assert list(chain_reader(io.BytesIO(a + b), None, "u")) == [(b"a", 1), (b"b", 2), (b"c", 3)]


def test_small_hunks_are_deflated_as_05_wrote_them_with_stdlib_zlib(stdlib_deflate: None) -> None:
    (version, flag, crc, deflated), _end = hunks(write_records([("a", 1)]))
    payload = pickle.dumps(("a", 1), RECORD_PICKLE_PROTOCOL)
    assert flag == 1 and deflated == zlib.compress(payload, 2)


def test_uncompressed_hunks_store_the_payload() -> None:
    data = write_records([("a", 1)], compression_level=0)
    (version, flag, crc, payload), _ = hunks(data)
    assert (
        flag == 0
        and payload == pickle.dumps(("a", 1), RECORD_PICKLE_PROTOCOL)
        and crc == zlib.crc32(payload)
    )


def test_hunks_flush_after_min_hunk_size() -> None:
    records = [(i, b"x" * 100) for i in range(50)]
    data = write_records(records, min_hunk_size=1000)
    assert len(hunks(data)) > 3
    assert list(chain_reader(io.BytesIO(data), None, "u")) == records


def test_round_trip_and_concatenation() -> None:
    a = write_records([(b"a", 1), (b"b", 2)])
    b = write_records([(b"c", 3)])
    assert list(chain_reader(io.BytesIO(a + b), None, "u")) == [(b"a", 1), (b"b", 2), (b"c", 3)]


def test_reader_accepts_any_pickle_protocol() -> None:
    payload = pickle.dumps(("k", "v"), 5)
    hunk = struct.pack("<BBIQ", 0x81, 0, zlib.crc32(payload), len(payload)) + payload
    assert list(chain_reader(io.BytesIO(hunk), None, "u")) == [("k", "v")]


def test_length_zero_ends_the_stream() -> None:
    data = struct.pack("<BBIQ", 0x81, 0, 0, 0) + b"garbage"
    assert list(chain_reader(io.BytesIO(data), None, "u")) == []


def test_truncated_header_and_payload() -> None:
    data = write_records([(b"a", 1)])
    with pytest.raises(DataError, match="Truncated data at 0 bytes"):
        list(chain_reader(io.BytesIO(data[:5]), None, "u"))
    with pytest.raises(DataError, match="Truncated data"):
        list(chain_reader(io.BytesIO(data[:20]), None, "u"))
    # truncated in the second (empty) hunk's header: the first hunk's records come first
    first_len = 14 + len(hunks(data)[0][3])
    got = []
    with pytest.raises(DataError, match="Truncated data at %d bytes" % first_len):
        for r in chain_reader(io.BytesIO(data[: first_len + 3]), None, "u"):
            got.append(r)
    assert got == [(b"a", 1)]


def test_crc_mismatch_is_corruption() -> None:
    data = bytearray(write_records([(b"a", 1)]))
    data[2] ^= 0xFF  # CRC field
    with pytest.raises(DataError, match="Corrupted data between bytes 0-"):
        list(chain_reader(io.BytesIO(bytes(data)), None, "u"))


def test_zlib_failure_is_corruption_and_ignore_corrupt_skips() -> None:
    good = write_records([(b"b", 2)])
    bad = bytearray(write_records([(b"a", 1)]))
    bad[14:18] = b"\x00\x00\x00\x00"
    with pytest.raises(DataError, match="Corrupted data"):
        list(chain_reader(io.BytesIO(bytes(bad) + good), None, "u"))
    got = list(disco_input_stream(io.BytesIO(bytes(bad) + good), None, "u", ignore_corrupt=True))
    assert got == [(b"b", 2)]


def test_unpickling_failure_is_data_error() -> None:
    payload = b"not a pickle"
    hunk = struct.pack("<BBIQ", 0x81, 0, zlib.crc32(payload), len(payload)) + payload
    with pytest.raises(DataError, match="unpickle"):
        list(chain_reader(io.BytesIO(hunk), None, "u"))


def test_netstring_v0_bytes_and_reader() -> None:
    out = io.BytesIO()
    w = DiscoOutputStream(out, version=0)
    assert isinstance(w, DiscoOutputStream_v0)
    w.add("key", "value")
    w.add(12, ["x"])
    w.add("k\u00e9", b"raw")
    data = out.getvalue()
    assert data == b"3 key 5 value\n2 12 5 ['x']\n3 k\xc3\xa9 3 raw\n"
    got = list(old_netstr_reader(io.BytesIO(data), len(data), "u"))
    assert got == [("key", "value"), ("12", "['x']"), ("k\u00e9", "raw")]


def test_netstring_reader_errors() -> None:
    with pytest.raises(ValueError, match="Content-length must be defined"):
        list(old_netstr_reader(io.BytesIO(b""), None, "u"))
    with pytest.raises(DataError, match="Truncated"):
        list(old_netstr_reader(io.BytesIO(b"3 key 5 val"), 100, "u"))
    with pytest.raises(DataError, match="Corrupted"):
        list(old_netstr_reader(io.BytesIO(b"x key 5 value\n"), 14, "u"))


def test_chain_reader_falls_back_to_netstrings(tmp_path) -> None:
    path = tmp_path / "old"
    path.write_bytes(b"1 a 1 b\n2 cd 0 \n")
    with open(path, "rb") as f:  # size unknown: taken from the file
        assert list(chain_reader(f, None, str(path))) == [("a", "b"), ("cd", "")]


def test_disco_output_is_atomic(tmp_path) -> None:
    path = str(tmp_path / "sub" / "out")
    out = DiscoOutput(path)
    out.add(b"k", b"v")
    assert not os.path.exists(path) and os.path.exists(path + ".partial")
    out.close()
    assert not os.path.exists(path + ".partial")
    with open(path, "rb") as f:
        assert list(chain_reader(f, None, path)) == [(b"k", b"v")]
    assert out.size() == os.path.getsize(path)


def test_chunker_splits_and_checks_record_size() -> None:
    # ddfs.md 3.4: a chunk closes once its flushed (compressed) hunks pass chunk_size
    lines = [b"line %d\n" % i + os.urandom(1000) for i in range(3000)]
    size = HUNK_SIZE + HUNK_SIZE // 2
    chunks = list(Chunker(chunk_size=size).chunks(lines))
    assert len(chunks) >= 2
    assert all(size < len(c) < size + 2 * HUNK_SIZE for c in chunks[:-1])
    assert list(Chunker(chunk_size=20000).chunks(lines[:100])) == [
        b"".join(Chunker().chunks(lines[:100]))
    ]
    assert [r for c in chunks for r in chain_reader(io.BytesIO(c), None, "u")] == lines
    with pytest.raises(ValueError, match="Record of size .* is larger than max_record_size: 10"):
        list(Chunker(max_record_size=10).chunks([b"x" * 100]))
