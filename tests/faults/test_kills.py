"""SIGKILLed workers and zygote during real jobs (issue 8, section 6).

Every task writes its pid and then waits for a "go" file, so the test kills processes
that are certainly in the middle of a task.  Each time: the answer is exact (every
record once), the failed attempts are the killed ones, and the master serves the next
job.  (SIGKILLing the master: tests/faults/test_master_restart.py.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from disco.core import result_iterator
from disco.embedded import EmbeddedMaster
from disco.job import Job
from tests.conftest import poll_for
from tests.faults.jobs import numbers_answer, numbers_map, sum_reduce

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("no_leaked_workers")]

INPUTS = ["raw://%d:%d" % (i * 50, 100) for i in range(10)]  # overlapping ranges


def answer(job: Job) -> list[tuple[str, int]]:
    return sorted((k, int(v)) for k, v in result_iterator(job.wait(poll_interval=0.1, timeout=150)))


def gated_job(url: str, tmp_path: Path) -> tuple[Job, Path, Path]:
    pids, go = tmp_path / "pids", tmp_path / "go"
    pids.mkdir()
    params = {"pids": str(pids), "go": str(go)}
    job = Job(master=url).run(input=INPUTS, map=numbers_map, reduce=sum_reduce, params=params)
    return job, pids, go


def alive(pid: int) -> bool:
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_named(text: str) -> list[int]:
    """Live processes whose parent is this process and whose command line has text."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and text in cmdline:
            found.append(int(entry))
    return found


def test_sigkilled_workers(tmp_path) -> None:
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[("localhost", 4)], retry_delay=0.0) as m:
        job, pids, go = gated_job(m.url, tmp_path)
        running = poll_for(lambda: len(os.listdir(pids)) >= 3 and os.listdir(pids), 60, "3 tasks")
        victims = [int(p) for p in running[:3]]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        poll_for(lambda: not any(alive(p) for p in victims), 30, "the workers to die")
        go.touch()
        assert answer(job) == numbers_answer(INPUTS)
        failed = m.disco.jobinfo(job.name)["failed_attempts"]
        assert len(failed) == 3 and {f["kind"] for f in failed} == {"signal"}
        assert all("signal 9 (SIGKILL)" in f["reason"] for f in failed)
        # the master serves afterwards
        again = Job(master=m.url).run(input=INPUTS[:2], map=numbers_map, reduce=sum_reduce)
        assert answer(again) == numbers_answer(INPUTS[:2])


def test_sigkilled_zygote(tmp_path) -> None:
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[("localhost", 4)], retry_delay=0.0) as m:
        zygotes = poll_for(lambda: children_named("disco.node.zygote_process"), 60, "the zygote")
        job, pids, go = gated_job(m.url, tmp_path)
        poll_for(lambda: len(os.listdir(pids)) >= 2, 60, "tasks forked by the zygote")
        for pid in zygotes:
            os.kill(pid, signal.SIGKILL)
        poll_for(lambda: not any(alive(p) for p in zygotes), 30, "the zygote to die")
        go.touch()
        assert answer(job) == numbers_answer(INPUTS)
        # the master serves afterwards: the next job's workers start (a new zygote or exec)
        again = Job(master=m.url).run(input=INPUTS[:3], map=numbers_map, reduce=sum_reduce)
        assert answer(again) == numbers_answer(INPUTS[:3])
