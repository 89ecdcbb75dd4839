"""The lean pieces of a warm process's serving loop (disco.node.zygote_process): the
same bytes and values as the general ones they replace."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from disco.node import zygote_process as zp
from disco.node.orphans import start_time


def test_start_time_matches_the_registry_s_own() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert zp._start_time(proc.pid) == start_time(proc.pid) > 0
        assert zp._start_time(os.getpid()) == start_time(os.getpid())
    finally:
        proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # a zombie now
    assert zp._start_time(proc.pid) == start_time(proc.pid) == 0
    proc.wait()
    assert zp._start_time(proc.pid) == 0  # gone


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": 1, "report": "/tmp/x/report-1"}',
        b'{"id": 7, "report": null}',
        b'{"id": 3, "report": "/t\\u00e9st \\"q\\"\\\\ \\n"}',
        b'  {"id": 2, "report": "a"}  ',
        '{"id": 4, "report": "h\u00e9"}'.encode(),
        b'{"warm": true, "cwd": "/w", "env": {"A": "1"}, "jobfile": "/w/j", "id": 9}',
    ],
)
def test_decode_reads_what_json_reads(line: bytes) -> None:
    assert zp._decode(line) == json.loads(line)


@pytest.mark.parametrize("line", [b'{"id": 1', b"", b'{"id": 1} x', b"nope"])
def test_decode_fails_as_json_does(line: bytes) -> None:
    with pytest.raises(json.JSONDecodeError):
        zp._decode(line)


def test_answers_are_the_bytes_json_made() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        zp._say_pid(ours, 12, 34567)
        zp._say_exit(ours, 34567, -9)
        zp._say_pid(ours, "x", 1)
        want = b"".join(
            json.dumps(m).encode() + b"\n"
            for m in ({"id": 12, "pid": 34567}, {"exit": 34567, "code": -9}, {"id": "x", "pid": 1})
        )
        assert theirs.recv(4096) == want
