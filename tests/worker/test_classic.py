"""Classic worker parameters on the node (library.md 10.1, 17), in real task processes."""

from __future__ import annotations

import os
from typing import Any

import pytest

from disco.job import Job, SimpleJob
from disco.worker.task_io import plain_output_stream, task_output_stream
from tests.worker import jobfuncs
from tests.worker.peer import Node

pytestmark = pytest.mark.timeout(60)


def job() -> Job:
    return Job(master="http://127.0.0.1:1")


def test_map_reader_and_map_init(tmp_path: Any) -> None:
    node = Node(
        str(tmp_path),
        job(),
        map=jobfuncs.words_map,
        map_reader=jobfuncs.line_reader,
        map_init=jobfuncs.skip_first_init,
        partitions=None,
    )
    run = node.run(inputs=[(0, ["raw://skipped,a b,c"])])
    assert run.status == "DONE", run.payload
    assert sorted(run.records()) == [("a", 1), ("b", 1), ("c", 1)]
    [(label, path, _)] = run.outputs
    # partitions=None: one label-less output named after the task uid
    assert label == 0 and os.path.basename(path) == path.split("/")[1]


def test_custom_output_stream(tmp_path: Any) -> None:
    node = Node(
        str(tmp_path),
        job(),
        map=jobfuncs.words_map,
        map_output_stream=(task_output_stream, plain_output_stream),
    )
    run = node.run(inputs=[(0, ["raw://k"])])
    assert run.status == "DONE", run.payload
    [(_, path, _)] = run.outputs
    with open(os.path.join(node.jobhome, path), "rb") as f:
        assert f.read() == b"1 k 1 1\n"


def test_required_module_shipped_by_path(tmp_path: Any) -> None:
    mod = tmp_path / "shipped_helper_xyz.py"
    mod.write_text("VALUE = 42\n")

    def uses_helper(entry: Any, params: Any) -> Any:
        yield entry, shipped_helper_xyz.VALUE  # noqa: F821 - injected on the node

    node = Node(
        str(tmp_path / "n"),
        job(),
        map=uses_helper,
        required_modules=[("shipped_helper_xyz", str(mod))],
    )
    run = node.run(inputs=[(0, ["raw://e"])])
    assert run.status == "DONE", run.payload
    assert run.records() == [("e", 42)]


def test_save_results_with_partitioned_map_only_is_fatal(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, save_results=True)
    run = node.run(inputs=[(0, ["raw://a"])])
    assert run.status == "FATAL"
    assert "Storing partitioned outputs in DDFS is not yet supported" in run.payload


def test_status_interval_zero(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, status_interval=0)
    run = node.run(inputs=[(0, ["raw://a"]), (0, ["raw://b"])])
    assert [m for m in run.messages if "mapped" in m] == ["Done: 2 entries mapped"]


def test_simple_job(tmp_path: Any) -> None:
    class Simple(SimpleJob):
        map = jobfuncs.simple_map

    node = Node(str(tmp_path), Simple(master="http://127.0.0.1:1"))
    run = node.run(inputs=[(0, ["raw://x"])])
    assert run.status == "DONE", run.payload
    assert run.records() == [("x", "map")]
    assert node.jobdict["map?"] is True


EXTERNAL_MAP = b"""#!%s
import struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
n = int(inp.readline())
inp.read(n)
u32 = struct.Struct("=I")
while True:
    head = inp.read(4)
    if not head:
        break
    key = inp.read(u32.unpack(head)[0])
    value = inp.read(u32.unpack(inp.read(4))[0])
    sys.stderr.write("**<MSG> got %%s\\n" %% value.decode())
    sys.stderr.flush()
    out.write(u32.pack(1) + u32.pack(len(value)) + value + u32.pack(1) + b"1")
    out.flush()
"""


def test_external_map_program(tmp_path: Any) -> None:
    import sys

    program = {"op": EXTERNAL_MAP % sys.executable.encode()}
    node = Node(str(tmp_path), job(), map=program, partitions=None)
    run = node.run(inputs=[(0, ["raw://abc"]), (0, ["raw://de"])])
    assert run.status == "DONE", run.payload
    assert sorted(run.records()) == [(b"abc", b"1"), (b"de", b"1")]
    assert "got abc" in run.messages
