"""A master SIGKILLed in the middle of jobs, then started again with ``disco start``.

The master is a real daemon (``disco.cli.daemon.Master``, what ``disco start`` runs) with
a private ``DISCO_ROOT`` on loopback.  Its tasks wait on gates (files the test creates,
``restartjobs.py``) so the test knows which tasks had finished when it kills the master.
Checked every time: the job ends ``ready`` with the exact word counts (no record lost or
duplicated), the tasks that had finished were not run again (each run appends a line to
a file), the others were, no worker or zygote of the dead master is left running, and
the restarted master serves new jobs.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disco.cli import daemon
from disco.core import Disco, result_iterator
from disco.job import Job
from disco.settings import DiscoSettings
from disco.worker.classic.worker import Worker as ClassicWorker
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker
from tests.conftest import clean_disco_env, free_port, poll_for
from tests.faults import restartjobs as jobs

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

LINES = [
    "0 the cat sat on the mat",
    "1 a cat and a dog",
    "2 the dog ate the cat food",
    "3 one two three two one",
    "4 the end of the line",
    "5 a b c a b c a",
]
WANT = Counter(w for line in LINES for w in line.split()[1:])
INPUTS = ["raw://" + line for line in LINES]


class Daemon:
    """The master daemon of one test, its data under ``root``, and the test's gates."""

    def __init__(self, root: Path, gates: Path) -> None:
        self.root = root
        self.gates = gates
        (gates / "runs").mkdir(parents=True)
        (gates / "go").mkdir()
        self.master = daemon.Master(DiscoSettings())
        self.disco = Disco(self.master.url)

    def start(self) -> None:
        self.master.start()

    def kill(self) -> None:
        """SIGKILL the master (nothing else) and reap it."""
        pid = self.master.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        child = daemon._children.pop(pid, None)
        if child is not None:
            child.wait(30)
        poll_for(lambda: not self.master.running, 30, "the master to die")

    def processes(self) -> dict[int, str]:
        """Live processes started for this master (its workers carry the data path in
        their environment, its zygote the master's), with their command lines."""
        marker = str(self.root).encode()
        found: dict[int, str] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/%s/environ" % entry, "rb") as f:
                    if marker not in f.read():
                        continue
                with open("/proc/%s/stat" % entry, "rb") as f:
                    if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                        continue
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    found[int(entry)] = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
        return found

    def open_gate(self, name: str) -> None:
        (self.gates / "go" / name).touch()

    def runs(self, name: str) -> int:
        path = self.gates / "runs" / name
        return len(path.read_text().splitlines()) if path.exists() else 0

    def started(self, *maps: int) -> bool:
        return all(self.runs("map-%d" % n) == 1 for n in maps)

    def stage_row(self, name: str, stage: str) -> list[Any]:
        rows = self.disco.jobinfo(name)["pipeline"]
        return next(r for r in rows if r[0] == stage)

    def counts(self, name: str) -> Counter[str]:
        results = self.disco.wait(name, poll_interval=0.2, timeout=180)
        got: Counter[str] = Counter()
        for word, count in result_iterator(results):
            got[word if isinstance(word, str) else word.decode()] += int(count)
        return got

    def kill_and_restart(self) -> None:
        """SIGKILL the master; its zygote and workers must die with it; start it again."""
        assert any("zygote" in cmd for cmd in self.processes().values())
        self.kill()
        poll_for(
            lambda: not self.orphans(), 30, "the workers and zygote of the killed master to die"
        )
        self.start()

    def orphans(self) -> dict[int, str]:
        """What still runs of the killed master, but the child a test task started."""
        return {p: c for p, c in self.processes().items() if not c.startswith("sleep")}


@pytest.fixture
def disco_daemon(monkeypatch, tmp_path) -> Iterator[Daemon]:
    port = clean_disco_env(
        monkeypatch, tmp_path, DDFS_PUT_PORT=str(free_port()), DISCO_EVENTS=""
    )
    monkeypatch.setenv("DISCO_MASTER", "http://127.0.0.1:%d" % port)
    d = Daemon(tmp_path / "root", tmp_path / "gates")
    d.start()
    d.disco.set_config([["localhost", "4"]])
    try:
        yield d
    finally:
        if d.master.running:
            d.master.stop()
        for pid in d.processes():  # a failed test must not leave workers behind
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def classic(d: Daemon, map: Any, reduce: Any = None) -> str:
    job = Job(master=d.master.url, worker=ClassicWorker())
    kwargs: dict[str, Any] = {"reduce": reduce} if reduce is not None else {}
    return job.run(input=INPUTS, map=map, params={"dir": str(d.gates)}, **kwargs).name


def test_kill_in_map_stage_keeps_finished_maps(disco_daemon: Daemon) -> None:
    d = disco_daemon
    for n in range(3):
        d.open_gate("map-%d" % n)
    name = classic(d, jobs.gated_map, jobs.gated_reduce)
    d.open_gate("reduce")
    poll_for(
        lambda: d.stage_row(name, "map")[3:5] == [3, 3] and d.started(3, 4, 5),
        60,
        "3 maps done and 3 waiting at their gates",
    )
    d.kill_and_restart()
    assert d.disco.jobinfo(name)["active"] == "active"
    for n in range(3, 6):
        d.open_gate("map-%d" % n)
    assert d.counts(name) == WANT
    assert [d.runs("map-%d" % n) for n in range(6)] == [1, 1, 1, 2, 2, 2]
    assert d.runs("reduce") == 1
    events = [e[1][2] for e in d.disco.events(name)]
    assert any("3 finished task(s) kept" in e for e in events)
    # the restarted master serves new jobs
    assert d.counts(classic(d, jobs.word_map)) == WANT


def test_kill_in_reduce_stage_keeps_every_map(disco_daemon: Daemon) -> None:
    d = disco_daemon
    name = classic(d, jobs.word_map, jobs.gated_reduce)
    poll_for(lambda: d.runs("reduce") == 1, 60, "the reduce task to start")
    assert d.stage_row(name, "map")[4] == 6
    # a client already waiting rides out the restart (its requests are retried)
    waiting = concurrent.futures.ThreadPoolExecutor(1)
    counted = waiting.submit(d.counts, name)
    d.kill_and_restart()
    d.open_gate("reduce")
    assert counted.result(timeout=180) == WANT
    waiting.shutdown()
    assert [d.runs("map-%d" % n) for n in range(6)] == [1] * 6
    assert d.runs("reduce") == 2


def test_kill_pipeline_job(disco_daemon: Daemon) -> None:
    d = disco_daemon
    for n in (0, 2, 4):
        d.open_gate("map-%d" % n)
    pipeline = [
        ("split", Stage("words", init=jobs.folder_of, process=jobs.gated_words)),
        ("group_label", Stage("sum", init=jobs.folder_of, process=jobs.sum_words, combine=True)),
    ]
    job = Job(master=d.master.url, worker=PipelineWorker())
    name = job.run(input=INPUTS, pipeline=pipeline, params={"dir": str(d.gates)}).name
    poll_for(
        lambda: d.stage_row(name, "words")[4] == 3 and d.started(1, 3, 5),
        60,
        "3 tasks of the first stage done, 3 waiting at their gates",
    )
    d.kill_and_restart()
    for n in (1, 3, 5):
        d.open_gate("map-%d" % n)
    assert d.counts(name) == WANT
    assert [d.runs("map-%d" % n) for n in range(6)] == [1, 2, 1, 2, 1, 2]


def test_orphans_of_a_killed_master_are_stopped(disco_daemon: Daemon) -> None:
    """Workers and the zygote die with the master; what a worker started is killed by
    the restarted master (its session was recorded)."""
    d = disco_daemon
    name = classic(d, jobs.child_map)
    poll_for(lambda: (d.gates / "child").exists(), 60, "a task to start its child")
    child = int((d.gates / "child").read_text())
    assert child in d.processes()
    d.kill_and_restart()  # asserts the workers and the zygote died with the master
    poll_for(lambda: child not in d.processes(), 30, "the restarted master to kill the child")
    for n in range(6):
        d.open_gate("map-%d" % n)
    assert d.counts(name) == WANT
