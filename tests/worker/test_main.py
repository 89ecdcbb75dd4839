"""The worker main loop as a real process (library.md 17), against a protocol peer."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest

from disco.fileutils import DiscoOutput
from disco.job import Job
from disco.worker.classic.func import default_partition, sum_combiner
from tests.worker import jobfuncs
from tests.worker.peer import HOST, JOBNAME, Node

pytestmark = pytest.mark.timeout(60)


def job() -> Job:
    return Job(master="http://127.0.0.1:1")


def test_map_over_raw_inputs(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map)
    run = node.run(inputs=[(0, ["raw://a b a"])])
    assert run.status == "DONE", run.payload
    kinds = [m for m, _ in run.log]
    assert kinds[:3] == ["WORKER", "TASK", "INPUT"] and kinds[-1] == "DONE"
    assert sorted(run.records()) == [("a", 1), ("a", 1), ("b", 1)]
    [(label, path, size)] = run.outputs
    assert label == 0 and not path.startswith("/") and size > 0
    # partitions=1 (the default): the partition file map-<group>-0 in <hh>/<uid>/
    assert os.path.basename(path) == "map-0-testhost-0"
    assert path.split("/")[1].startswith("map:0-testhost-0-")
    assert "Done: 1 entries mapped" in run.messages
    assert run.messages[-1] == "Results sent to master"


def test_map_functions_by_value_and_status_interval(tmp_path: Any) -> None:
    def by_value(entry: str, params: Any) -> Any:
        yield entry.upper(), params.n  # a closure-free function shipped by value

    from disco.worker import Params

    node = Node(str(tmp_path), job(), map=by_value, params=Params(n=7), status_interval=2)
    inputs = [(0, ["raw://%s" % c]) for c in "abcde"]
    run = node.run(inputs=inputs)
    assert run.status == "DONE", run.payload
    assert sorted(run.records()) == [(c, 7) for c in "ABCDE"]
    status = [m for m in run.messages if "entries mapped" in m]
    assert status == ["2 entries mapped", "4 entries mapped", "Done: 5 entries mapped"]


def test_partitioned_map_with_combiner(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, partitions=3, combiner=sum_combiner)
    run = node.run(inputs=[(0, ["raw://x y x z x y w"])])
    assert run.status == "DONE", run.payload
    want = {"x": 3, "y": 2, "z": 1, "w": 1}
    labels = {label for label, _, _ in run.outputs}
    assert labels == {default_partition(k, 3, None) for k in want}
    for label in labels:
        got = dict(run.records(label))
        assert got == {k: v for k, v in want.items() if default_partition(k, 3, None) == label}
        [path] = [p for lbl, p, _ in run.outputs if lbl == label]
        assert os.path.basename(path) == "map-0-testhost-%d" % label


def test_map_without_records_has_no_outputs(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map)
    run = node.run(inputs=[(0, ["raw://"])])
    assert run.status == "DONE", run.payload
    assert run.outputs == []


def _write_records(path: str, records: list[tuple[Any, Any]]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    out = DiscoOutput(path)
    for k, v in records:
        out.add(k, v)
    out.close()


def test_reduce_with_sort_over_index_and_data_inputs(tmp_path: Any) -> None:
    node = Node(
        str(tmp_path), job(), map=jobfuncs.words_map, reduce=jobfuncs.sorted_reduce, sort=True
    )
    _write_records(os.path.join(node.jobhome, "aa/in1"), [(b"pear", 1), (b"apple", 2)])
    _write_records(os.path.join(node.jobhome, "aa/in2"), [(b"fig", 3), (b"apple", 4)])
    _write_records(os.path.join(node.jobhome, "aa/other"), [(b"zzz", 9)])
    index = os.path.join(node.jobhome, ".disco", "map-0-1.results")
    os.makedirs(os.path.dirname(index))
    with open(index, "w") as f:
        f.write("0 %s 10\n" % node.url("aa/in1"))
        f.write("1 %s 10\n" % node.url("aa/other"))
        f.write("0 %s 10\n" % node.url("aa/in2"))
    dir_url = node.url(".disco/map-0-1.results").replace("disco://", "dir://", 1)
    run = node.run(stage="reduce", grouping="group_label", group=(0, ""), inputs=[(0, [dir_url])])
    assert run.status == "DONE", run.payload
    records = run.records()
    assert [k for k, _ in records] == [b"apple", b"apple", b"fig", b"pear"]
    assert sorted(v for k, v in records if k == b"apple") == [2, 4]
    [(label, path, _)] = run.outputs
    assert label == 0 and os.path.basename(path).startswith("reduce:0--0-")
    assert "Done: 4 entries reduced" in run.messages
    assert "Finished sorting" in run.messages


def test_reduce2_over_data_urls_without_input(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, reduce=jobfuncs.sum_reduce2)
    _write_records(os.path.join(node.jobhome, "bb/a"), [("k", 1), ("j", 5)])
    _write_records(os.path.join(node.jobhome, "bb/b"), [("k", 2)])
    inputs = [(0, [node.url("bb/a")]), (0, ["file://" + os.path.join(node.jobhome, "bb/b")])]
    run = node.run(stage="reduce", grouping="group_all", group=(0, ""), inputs=inputs)
    assert run.status == "DONE", run.payload
    assert run.records() == [("j", 5), ("k", 3)]
    # A reduce always has its output, even with no input at all.
    empty = node.run(stage="reduce", grouping="group_all", group=(0, ""), inputs=[])
    assert empty.status == "DONE" and len(empty.outputs) == 1 and empty.records() == []


def test_shuffle_concatenates_per_label(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map)
    _write_records(os.path.join(node.jobhome, "cc/p0"), [("a", 1)])
    _write_records(os.path.join(node.jobhome, "cc/p1"), [("b", 2)])
    _write_records(os.path.join(node.jobhome, "cc/q0"), [("c", 3)])
    index = os.path.join(node.jobhome, ".disco", "map-1-1.results")
    os.makedirs(os.path.dirname(index))
    with open(index, "w") as f:
        f.write("0 %s 1\n1 %s 1\n" % (node.url("cc/p0"), node.url("cc/p1")))
    dir_url = node.url(".disco/map-1-1.results").replace("disco://", "dir://", 1)
    inputs: list[Any] = [("all", [dir_url]), (0, [node.url("cc/q0")])]
    run = node.run(stage="map_shuffle", grouping="group_node", group=(0, HOST), inputs=inputs)
    assert run.status == "DONE", run.payload
    assert sorted(run.records(0)) == [("a", 1), ("c", 3)]
    assert run.records(1) == [("b", 2)]
    assert sorted(os.path.basename(p) for _, p, _ in run.outputs) == [
        "map_shuffle-0-testhost-0",
        "map_shuffle-0-testhost-1",
    ]
    assert "Shuffled 2 inputs into 2 label(s)" in run.messages


@pytest.mark.parametrize(
    "kind, status, text",
    [
        ("data", "ERROR", "bad data"),
        ("os", "ERROR", "disk on fire"),
        ("memory", "ERROR", "MemoryError"),
        ("bug", "FATAL", "a bug in the job"),
    ],
)
def test_error_classification(tmp_path: Any, kind: str, status: str, text: str) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.failing_map)
    run = node.run(inputs=[(0, ["raw://%s" % kind])])
    assert run.status == status
    assert "Traceback" in run.payload and text in run.payload


def test_version_mismatch_is_fatal(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, version="2.7")
    run = node.run(inputs=[(0, ["raw://a"])])
    assert run.status == "FATAL" and "Python version mismatch" in run.payload


def test_print_becomes_msg(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.printing_map)
    run = node.run(inputs=[(0, ["raw://x"])])
    assert run.status == "DONE", run.payload
    # one message per printed line; blank ones dropped; pending text sent before DONE
    assert run.messages[:2] == ["hello from map x", "warning: to stderr"]
    assert "" not in run.messages
    assert run.messages[-1] == "no newline"


def test_replica_failover_and_input_err(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map)
    missing = "file://" + os.path.join(str(tmp_path), "missing")
    run = node.run(inputs=[(0, [missing, "raw://ok ok"])])
    assert run.status == "DONE", run.payload
    assert run.records() == [("ok", 1), ("ok", 1)]
    failed = node.run(inputs=[(0, [missing, missing + "2"])])
    assert failed.status == "FATAL"  # no replica exists: a retry cannot help (disco.retryable)
    assert "Exhausted all available replicas" in failed.payload
    assert failed.input_errors == [[0, [0, 1]]]


def test_injected_names_do_not_shadow_builtins(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.injected_map, partitions=None)
    run = node.run(inputs=[(0, ["raw://a"]), (0, ["raw://b", "raw://c"])])
    assert run.status == "DONE", run.payload
    got = dict(run.records())
    assert got["name"] == JOBNAME
    assert got["host"] == HOST
    assert got["master"] == "http://127.0.0.1:1"
    assert got["partition"] == 0
    assert got["inputs"] == [["raw://a"], ["raw://b", "raw://c"]]
    assert got["task"] == "map"
    assert got["map_is_builtin"] is True


def test_job_class_methods_and_cwd(tmp_path: Any) -> None:
    class Bound(Job):
        partitions = None

        def map(self, entry: Any, params: Any) -> Any:
            yield self.name, entry
            yield "cwd", os.getcwd()
            yield "python", sys.version_info[:2]

    node = Node(str(tmp_path), Bound(master="http://127.0.0.1:1"))
    run = node.run(inputs=[(0, ["raw://e"])])
    assert run.status == "DONE", run.payload
    got = dict(run.records())
    assert got["Bound"] == "e"
    assert os.path.realpath(got["cwd"]) == os.path.realpath(node.jobhome)
    assert got["python"] == tuple(sys.version_info[:2])


def test_a_planned_memory_limit_is_used_only_for_its_own_settings() -> None:
    """``plan_memory_limit`` (a warm process) works the limit out once; a task of
    another job (other settings) works out its own."""
    import subprocess
    import sys

    script = """
import resource
from disco.settings import DiscoSettings
from disco.worker import taskrun
planned = DiscoSettings(DISCO_WORKER_MAX_MEM="2G")
taskrun.plan_memory_limit(planned)
other = DiscoSettings(DISCO_WORKER_MAX_MEM="1G")
taskrun._planned_limit = (planned, (5 << 30, "5G"))  # what the plan holds is what applies
taskrun._apply_memory_limit(planned)
print(resource.getrlimit(resource.RLIMIT_AS)[0])
taskrun._apply_memory_limit(other)
print(resource.getrlimit(resource.RLIMIT_AS)[0])
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert [int(x) for x in out] == [5 << 30, 1 << 30]


def test_a_prepared_crash_handler_writes_to_each_tasks_own_crash_file(tmp_path: Any) -> None:
    """``prepare_crash_handler`` (a warm process) enables ``faulthandler`` once; a task
    with a report path points it at ``<report>.crash``, one without turns it off."""
    import subprocess
    import sys

    script = """
import faulthandler, os, sys
from disco.worker import report
report.prepare_crash_handler()
fd = report._crash_fd
report.reporter.start({"DISCO_TASK_REPORT": sys.argv[1]})
print(faulthandler.is_enabled(), os.readlink("/proc/self/fd/%d" % fd))
report.reporter.memory_limit(1 << 30, "1G")
report.reporter.reading("raw://a")
print(open(sys.argv[1]).read())
report.reporter.start({})
print(faulthandler.is_enabled())
"""
    path = str(tmp_path / "map-0-0.json")
    out = subprocess.run(
        [sys.executable, "-c", script, path], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == "True %s.crash" % path
    assert json.loads(out[1]) == {"max_mem": 1 << 30, "max_mem_setting": "1G", "input": "raw://a"}
    assert out[2] == "False"
