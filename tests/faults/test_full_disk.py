"""A data disk that fills up (issue 8, section 4), on small tmpfs disks, with a real
master and real jobs.

- a job that needs more than the disk holds fails within a minute, saying which disk
  is full and how much the task needs; its partial outputs are gone; one attempt, not
  100; the master serves the next job;
- a task that failed for want of space waits until space is back, then the job ends
  with the exact answer;
- purge works on a full disk (data first, record last) and the purged job does not
  come back after a restart;
- the master starts on a full disk: read-only, says so in its log and nodeinfo, serves
  reads, refuses submissions with a clear reason, and is read-write again once there is
  space.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from disco.core import Disco, result_iterator
from disco.embedded import EmbeddedMaster
from disco.error import DiscoError, JobError
from disco.job import Job
from disco.master.events import timestamp
from tests.conftest import poll_for
from tests.faults.conftest import fill
from tests.faults.jobs import big_map, count_reduce, numbers_answer, numbers_map, sum_reduce

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("no_leaked_workers")]

MiB = 1 << 20


@contextmanager
def fault_master(
    tmp_path: Path, data: Path, master_root: Path | None = None
) -> Iterator[EmbeddedMaster]:
    """A master whose DISCO_DATA is ``data`` (its own data apart, unless given); its
    config table (one node, 2 workers) is saved on the first start only."""
    settings = {
        "DISCO_DATA": str(data),
        "DISCO_MASTER_ROOT": str(master_root or tmp_path / "master"),
    }
    first = not (tmp_path / "root").exists()
    nodes = [("localhost", 2)] if first else None
    with EmbeddedMaster(root=tmp_path / "root", nodes=nodes, settings=settings) as m:
        yield m


def event_times(disco: Disco, name: str, text: str) -> list[float]:
    """Times (seconds, the event log's resolution) of the job's events containing text."""
    found = []
    for _offset, (when, _host, message) in disco.events(name):
        if text in message:
            found.append(time.mktime(time.strptime(when, "%Y/%m/%d %H:%M:%S")))
    return found


def run_numbers(url: str, inputs: list[str]) -> list[tuple[str, int]]:
    job = Job(master=url).run(input=inputs, map=numbers_map, reduce=sum_reduce)
    results = sorted(result_iterator(job.wait(poll_interval=0.1, timeout=120)))
    return [(k, int(v)) for k, v in results]


def test_job_fails_within_a_minute_when_no_node_has_space(tmp_path, tmpfs) -> None:
    disk = tmpfs("data", 4096)  # 4 MiB; the map writes about 10 MB
    with fault_master(tmp_path, disk) as m:
        job = Job(master=m.url).run(input=["raw://big:10000"], map=big_map)
        with pytest.raises(JobError) as info:
            job.wait(poll_interval=0.1, timeout=120)
        message = info.value.message
        assert message.startswith("DiskFull: No node has space left for task map:0: ")
        assert "the disk %s of node localhost is full (" % disk in message
        assert "the task needs at least " in message
        # within a minute, from the times the master recorded
        info_ = m.disco.jobinfo(job.name)
        failed_at = event_times(m.disco, job.name, "No node has space left")
        submitted = time.mktime(time.strptime(info_["timestamp"], "%Y/%m/%d %H:%M:%S"))
        assert failed_at and failed_at[0] - submitted <= 60
        # one attempt: not retried on the full node
        assert len(info_["failed_attempts"]) == 1
        assert "No space left on device" in info_["failed_attempts"][0]["reason"]
        # the failed attempt's partial outputs were deleted
        assert shutil.disk_usage(disk).used < MiB
        # the master serves afterwards
        assert run_numbers(m.url, ["raw://0:50"]) == numbers_answer(["raw://0:50"])


def test_task_waits_for_space_then_the_answer_is_exact(tmp_path, tmpfs) -> None:
    disk = tmpfs("data", 8192)
    with fault_master(tmp_path, disk) as m:
        filler = fill(disk)
        os.truncate(filler, os.path.getsize(filler) - 512 * 1024)  # 512 KiB free
        job = Job(master=m.url).run(
            input=["raw://a:1500", "raw://b:10"], map=big_map, reduce=count_reduce
        )
        poll_for(
            lambda: m.disco.nodeinfo()["localhost"]["disk_full"], 60, "the node to be full"
        )
        assigned = len(event_times(m.disco, job.name, "map:0 assigned to"))
        os.remove(filler)  # space is back
        results = dict(result_iterator(job.wait(poll_interval=0.1, timeout=120)))
        assert results == {**{"a-%d" % i: 1 for i in range(1500)}, **{"b-%d" % i: 1 for i in range(10)}}
        texts = [e[2] for _o, e in m.disco.events(job.name)]
        assert any("Node localhost has space again" in t for t in texts), texts
        # while the disk was full, the failed task was not started again
        assert assigned == 1
        assert m.disco.nodeinfo()["localhost"]["disk_full"] is None


def test_purge_on_a_full_disk_and_no_record_comes_back(tmp_path, tmpfs, caplog) -> None:
    disk = tmpfs("disk", 8192)
    master_root = disk / "master"  # SQLite on the disk that fills up
    inputs = ["raw://0:200", "raw://100:200"]
    with fault_master(tmp_path, disk / "data", master_root) as m:
        kept = Job(master=m.url).run(input=inputs, map=numbers_map, reduce=sum_reduce)
        kept.wait(poll_interval=0.1, timeout=120)
        purged = Job(master=m.url).run(input=inputs, map=numbers_map, reduce=sum_reduce)
        purged.wait(poll_interval=0.1, timeout=120)
        job_data = [p for p in (disk / "data" / "localhost").glob("*/%s" % purged.name)]
        assert job_data
        fill(disk)
        m.disco.purge(purged.name)
        assert purged.name not in [j[2] for j in m.disco.joblist()]
        poll_for(lambda: not any(p.exists() for p in job_data), 30, "the job data to go")
        poll_for(
            lambda: not list(master_root.glob("*/%s" % purged.name)), 30, "the master dir to go"
        )
    # the disk is still full (minus the purged data): fill it again, restart
    fill(disk, "filler2")
    with caplog.at_level(logging.WARNING, logger="disco"):
        with fault_master(tmp_path, disk / "data", master_root) as m:
            names = [j[2] for j in m.disco.joblist()]
            assert purged.name not in names and kept.name in names
            assert m.disco.jobinfo(kept.name)["active"] == "ready"
            answer = sorted((k, int(v)) for k, v in result_iterator(m.disco.results(kept.name)[1]))
            assert answer == numbers_answer(inputs)
    assert any("full" in r.getMessage() for r in caplog.records)


def test_master_starts_read_only_on_a_full_disk(tmp_path, tmpfs, caplog) -> None:
    disk = tmpfs("disk", 8192)
    master_root = disk / "master"
    inputs = ["raw://0:30"]
    with fault_master(tmp_path, disk / "data", master_root) as m:
        name = Job(master=m.url).run(input=inputs, map=numbers_map, reduce=sum_reduce).name
        m.disco.wait(name, poll_interval=0.1, timeout=120)
        before = m.disco.jobinfo(name)
    filler = fill(disk)
    with caplog.at_level(logging.WARNING, logger="disco"):
        with fault_master(tmp_path, disk / "data", master_root) as m:
            logged = [r.getMessage() for r in caplog.records]
            assert any("read-only" in t for t in logged), logged
            node = m.disco.nodeinfo()["localhost"]
            state = node["master_disk_full"]
            assert state["read_only"] is True and state["disk"] == str(disk)
            assert "DISCO_MASTER_ROOT is full" in state["reason"]
            # reads are served
            assert [j[2] for j in m.disco.joblist()] == [name]
            assert m.disco.jobinfo(name)["pipeline"] == before["pipeline"]
            assert any("READY" in e[2] for _o, e in m.disco.events(name))
            # a submission is refused with a clear reason, and nothing is recorded
            with pytest.raises(DiscoError) as info:
                Job(master=m.url).run(input=inputs, map=numbers_map, reduce=sum_reduce)
            assert "the master is read-only: the disk of DISCO_MASTER_ROOT is full" in str(
                info.value
            )
            assert [j[2] for j in m.disco.joblist()] == [name]
            # space is back: read-write again without a restart
            os.remove(filler)
            poll_for(
                lambda: m.disco.nodeinfo()["localhost"]["master_disk_full"] is None,
                30,
                "the master to be read-write",
            )
            assert run_numbers(m.url, inputs) == numbers_answer(inputs)
    assert timestamp(0)  # the events' time format is the one parsed above


def test_store_of_a_killed_master_opens_read_only_on_a_full_disk(tmp_path, tmpfs) -> None:
    """A master SIGKILLed leaves a WAL behind; on a full disk its store still opens
    (read-only, through the WAL) with every job it had written."""
    import signal
    import subprocess
    import sys

    from disco.master.store import Store, StoreReadOnly

    disk = tmpfs("disk", 2048)
    code = (
        "import os, signal, sys\n"
        "from disco.master.store import JobRecord, Store\n"
        "s = Store(sys.argv[1], sys.argv[2])\n"
        "s._db.execute('PRAGMA wal_autocheckpoint=0')\n"
        "s.save_job(JobRecord(name='J@1:2:3', status='ready', start=1.0, seq=1))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root, config = str(disk / "master"), str(tmp_path / "config.json")
    done = subprocess.run([sys.executable, "-c", code, root, config])
    assert done.returncode == -signal.SIGKILL
    assert os.path.getsize(disk / "master" / "master.sqlite3-wal") > 0
    fill(disk)
    store = Store(root, config)
    try:
        assert store.read_only and "DISCO_MASTER_ROOT is full" in store.read_only
        assert [r.name for r in store.load_jobs()] == ["J@1:2:3"]
        with pytest.raises(StoreReadOnly):
            store.set_setting("max_failure_rate", 3)
    finally:
        store.close()
