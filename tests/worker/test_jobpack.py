"""JobPack: the binary layout of master-api.md 6.1, byte for byte."""

from __future__ import annotations

import io
import json
import struct

import pytest

from disco import JOBPACK_VERSION1, JOBPACK_VERSION2
from disco.error import DiscoError
from disco.job import JobPack, PackedJobPack

JOBDICT = {"prefix": "P", "worker": "bin/disco-worker", "owner": "me@here", "scheduler": {}}
JOBENVS = {"PYTHONPATH": "lib:x", "LD_LIBRARY_PATH": "lib"}


def test_dumps_layout() -> None:
    pack = JobPack(JOBPACK_VERSION1, JOBDICT, JOBENVS, b"ZIP", b"DATA")
    raw = pack.dumps()
    d = json.dumps(JOBDICT).encode()
    e = json.dumps(JOBENVS).encode()
    assert raw[:4] == b"\xd5\xc0\x00\x01"
    offsets = struct.unpack("!IIII", raw[4:20])
    assert offsets == (128, 128 + len(d), 128 + len(d) + len(e), 128 + len(d) + len(e) + 3)
    assert raw[20:128] == b"\0" * 108
    assert raw[128:] == d + e + b"ZIP" + b"DATA"
    assert JobPack.header(offsets) == raw[:128]
    assert [o for o, _ in pack.contents()] == list(offsets)


def test_round_trip_byte_for_byte() -> None:
    raw = JobPack(JOBPACK_VERSION2, JOBDICT, JOBENVS, b"PK\x03\x04zip", b"\x00\x01pickle").dumps()
    loaded = JobPack.load(io.BytesIO(raw))
    assert isinstance(loaded, PackedJobPack)
    assert loaded.version == JOBPACK_VERSION2
    assert loaded.jobdict == JOBDICT
    assert loaded.jobenvs == JOBENVS
    assert loaded.jobhome == b"PK\x03\x04zip"
    assert loaded.jobdata == b"\x00\x01pickle"
    assert loaded.dumps() == raw
    assert JobPack.offsets(io.BytesIO(raw)) == [o for o, _ in loaded.contents()]


def test_empty_jobdata_runs_to_end() -> None:
    raw = JobPack(JOBPACK_VERSION1, JOBDICT, JOBENVS, b"", b"").dumps()
    loaded = JobPack.load(io.BytesIO(raw))
    assert loaded.jobhome == b"" and loaded.jobdata == b""


@pytest.mark.parametrize(
    "header",
    [
        struct.pack("!IIIII", 0xABCD0001, 128, 130, 131, 132),  # bad magic
        struct.pack("!IIIII", 0xD5C00001, 120, 130, 131, 132),  # dict offset not 128
        struct.pack("!IIIII", 0xD5C00001, 128, 140, 131, 132),  # not sorted
        b"\xd5\xc0",  # truncated
    ],
)
def test_bad_headers_are_refused(header: bytes) -> None:
    with pytest.raises(DiscoError, match="Invalid job pack"):
        JobPack.load(io.BytesIO(header.ljust(140, b"\0") if len(header) > 4 else header))
