"""The netstring dictionaries of external programs (10.5) and the old record format
(16.2) are one codec: the same bytes, the same reader (issue 13)."""

from __future__ import annotations

import io

import pytest

from disco.fileutils import DiscoOutputStream_v0, netstring_record
from disco.worker.classic import netstring
from disco.worker.task_io import old_netstr_reader


def test_a_dict_block_is_the_old_record_format() -> None:
    params = {"key": "välue", b"raw": b"\x00\xff", "n": 12}
    block = netstring.encode_netstring_str(params)
    out = io.BytesIO()
    writer = DiscoOutputStream_v0(out)
    for k, v in params.items():
        writer.add(k, v)
    assert block == out.getvalue() == b"".join(netstring_record(k, v) for k, v in params.items())
    assert block == b"3 key 6 v\xc3\xa4lue\n3 raw 2 \x00\xff\n1 n 2 12\n"
    records = list(old_netstr_reader(io.BytesIO(block), len(block), "x"))
    assert netstring.decode_netstring_str(block) == dict(records)
    assert records == [("key", "välue"), ("raw", "\x00\ufffd"), ("n", "12")]


@pytest.mark.parametrize(
    "bad", [b"5 abc", b"x 1 a 1 b\n", b"1 a 1 b", b"1 a 1 bc\n", b"1 a;1 b\n", b"1 a 99 b\n"]
)
def test_broken_blocks_are_netstring_errors(bad: bytes) -> None:
    with pytest.raises(netstring.NetStringError):
        netstring.decode_netstring_str(bad)
    with pytest.raises(netstring.NetStringError):
        netstring.decode_netstring_fd(io.BytesIO(b"%d\n%s" % (len(bad), bad)))


def test_fd_round_trip() -> None:
    block = netstring.encode_netstring_fd({"a": 1, "": ""})
    assert block == b"14\n1 a 1 1\n0  0 \n"
    assert netstring.decode_netstring_fd(io.BytesIO(block)) == {"a": "1", "": ""}
