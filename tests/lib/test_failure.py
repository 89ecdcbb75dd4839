"""``disco.failure``, ``disco.error.JobError`` details, memory sizes, ``memwatch``."""

from __future__ import annotations

import os
import pickle

from disco import sysutil
from disco.error import JobError
from disco.failure import Failure, read_report, tail, trim_crash, write_report
from disco.node.memwatch import group_rss


def failure() -> Failure:
    return Failure(
        "exception",
        "ValueError",
        "bad",
        traceback="Traceback (most recent call last):\n  ...\nValueError: bad\n",
        input="raw://x",
        output_tail="hello",
        stage="map",
        taskid=3,
        host="node1",
        attempt=2,
    )


def test_failure_text_and_json_round_trip() -> None:
    f = failure()
    assert f.text() == (
        "ValueError: bad\n"
        "  in map task 3 on node1 (attempt 2), reading raw://x\n"
        "Remote traceback:\nTraceback (most recent call last):\n  ...\nValueError: bad\n"
        "Last output of the worker:\nhello"
    )
    assert Failure.from_json(f.to_json()) == f
    data = {"kind": "exit", "exc_type": "", "exc_message": "x", "unknown": 1}
    assert Failure.from_json(data) == Failure("exit", "", "x")  # unknown keys ignored
    assert Failure.from_json({"exc_message": "x"}) is None  # not a whole report
    assert Failure.from_json("text") is None and Failure.from_json({}) is None


def test_report_file(tmp_path) -> None:
    path = str(tmp_path / "r.json")
    assert read_report(path) == {}
    write_report(path, {"input": "raw://a"})
    assert read_report(path) == {"input": "raw://a"}
    write_report(path, {"bad": object()})  # never raises; keeps the last good report
    assert read_report(path) == {"input": "raw://a"}


def test_tail_and_crash_trimming() -> None:
    assert tail("a\n\nb\nc\n", 2) == "b\nc"
    disco_dir = os.path.dirname(os.path.abspath(sysutil.__file__))
    crash = (
        'Fatal Python error: Segmentation fault\n  File "/u/job.py", line 3 in f\n'
        '  File "%s/worker/__init__.py", line 9 in main\n  File "<frozen runpy>", line 88\n'
        % disco_dir
    )
    assert trim_crash(crash) == (
        'Fatal Python error: Segmentation fault\n  File "/u/job.py", line 3 in f'
    )


def test_job_error_details_and_compatibility() -> None:
    plain = JobError("J@1", "Status dead")
    assert str(plain) == "Job J@1 failed: Status dead" and plain.exc_type is None
    f = failure()
    detailed = JobError("J@1", f.text(), attempts=2, **f.to_json())
    assert str(detailed) == f.text() + "\n  (job J@1, 2 failed attempt(s))"
    assert (detailed.exc_type, detailed.stage, detailed.input) == ("ValueError", "map", "raw://x")
    again = pickle.loads(pickle.dumps(detailed))
    assert str(again) == str(detailed) and again.traceback == f.traceback


def test_memory_sizes() -> None:
    assert sysutil.mem_limit_bytes("512M") == 512 << 20
    assert sysutil.mem_limit_bytes("2g") == 2 << 30
    assert sysutil.mem_limit_bytes("1.5K") == 1536
    assert sysutil.mem_limit_bytes("") == 0 and sysutil.mem_limit_bytes(0) == 0
    assert sysutil.set_mem_limit("") == 0  # no limit: nothing changed


def test_group_rss_of_this_process_group() -> None:
    pgid = os.getpgid(0)
    rss = group_rss({pgid, 999999999})
    assert rss[pgid] > 1 << 20 and rss[999999999] == 0


def test_a_large_report_is_written_whole_and_replaces_the_old_one(tmp_path) -> None:
    path = str(tmp_path / "r.json")
    write_report(path, {"input": "raw://a"})
    big = {"failure": {"traceback": "x" * (3 << 20)}, "input": "raw://é"}
    write_report(path, big)
    assert read_report(path) == big
    assert sorted(os.listdir(tmp_path)) == ["r.json"]  # no temporary file left
    write_report(str(tmp_path / "missing" / "r.json"), big)  # never raises
