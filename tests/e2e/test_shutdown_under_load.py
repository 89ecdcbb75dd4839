"""Stopping a master while it works (issue 13, branch ``mtloop2``): under a stream of tiny
tasks, right after a task failed with an exception, and while workers are in the middle of
the protocol.  Each stop must end promptly (polled with a deadline), leave no worker
process behind (the zygote, warm processes and tasks are all descendants of this test
process) and no unfinished task on the master's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from disco.embedded import EmbeddedMaster
from disco.error import JobError
from disco.job import Job
from disco.test import poll_for
from tests.conftest import live_processes

pytestmark = pytest.mark.timeout(120)

STOP_DEADLINE = 20.0  # seconds: an upper bound for a loaded machine, not an expectation


# -- job functions (shipped to the workers from this module) ---------------------------------
def tiny_map(line: str, params: Any) -> Any:
    yield line, 1


def bad_map(line: str, params: Any) -> Any:
    if line == "boom":
        raise ValueError("no way to map %r" % line)
    yield line, 1


def waiting_map(line: str, params: Any) -> Any:
    import time

    print("mapping %s" % line)  # a MSG: the worker is in the protocol, past INPUT
    time.sleep(60)
    yield line, 1


def chatty_map(line: str, params: Any) -> Any:
    for i in range(3):
        print("line %s, message %d" % (line, i))  # MSGs and their OKs in flight
    yield line, 1


# -- helpers -----------------------------------------------------------------------------------
def descendants() -> set[int]:
    """Live (non-zombie) processes below this test process, at any depth."""
    parents = {pid: int(fields[1]) for pid, fields in live_processes().items()}
    found: set[int] = set()
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        kids = [kid for kid, parent in parents.items() if parent == pid]
        found.update(kids)
        todo.extend(kids)
    return found


def stop_within_deadline(master: EmbeddedMaster, before: set[int]) -> None:
    """``master.stop()`` ends within ``STOP_DEADLINE``; then no task is left unfinished on
    its loop and no process it started is alive."""
    loop = master._loop
    assert loop is not None
    errors: list[BaseException] = []

    def stop() -> None:
        try:
            master.stop()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    stopper = threading.Thread(target=stop, name="stopping the master", daemon=True)
    started = time.monotonic()
    stopper.start()
    poll_for(lambda: not stopper.is_alive(), STOP_DEADLINE, "the master to stop")
    assert not errors, errors
    assert loop.is_closed()
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    assert not pending, "unfinished tasks on the stopped master's loop: %r" % pending
    poll_for(
        lambda: not (descendants() - before),
        max(1.0, STOP_DEADLINE - (time.monotonic() - started)),
        "the master's processes to exit",
    )


@contextlib.contextmanager
def master_at_work(tmp_path: Any, zygote: bool | None = None) -> Iterator[EmbeddedMaster]:
    """A started master (its tasks forked by the zygote or not, ``None``: the default),
    stopped at once if the block fails; the test's own stop is ``stop_within_deadline``."""
    master = EmbeddedMaster(root=tmp_path / "disco", retry_delay=0.0).start()
    try:
        if zygote is not None:
            master.server.backend.use_zygote = zygote
        yield master
    except BaseException:
        master.stop()
        raise


def finished_tasks(master: EmbeddedMaster, job: str) -> int:
    runtime = master.server.runtime
    return master.call(lambda: sum(1 for a in runtime.attempts.of(job) if a.outcome == "done"))


def running_tasks(master: EmbeddedMaster, job: str) -> int:
    runtime = master.server.runtime
    return master.call(lambda: sum(1 for a in runtime.attempts.of(job) if a.outcome == "running"))


def msg_events(master: EmbeddedMaster, job: str) -> int:
    return sum(1 for _o, event in master.disco.events(job) if event[2].startswith("MSG: "))


# -- the tests ---------------------------------------------------------------------------------
@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "exec"])
def test_stop_while_many_tiny_tasks_run(tmp_path, zygote) -> None:
    before = descendants()
    with master_at_work(tmp_path, zygote) as master:
        job = Job(master=master.url).run(
            input=["raw://%d" % i for i in range(3000)], map=chatty_map
        )
        poll_for(lambda: finished_tasks(master, job.name) >= 20, 60, "20 tasks to finish")
    stop_within_deadline(master, before)


def test_stop_right_after_an_exception_in_map(tmp_path) -> None:
    before = descendants()
    with master_at_work(tmp_path) as master:
        job = Job(master=master.url).run(input=["raw://fine", "raw://boom"], map=bad_map)
        with pytest.raises(JobError):
            job.wait(poll_interval=0.05, timeout=40)
    stop_within_deadline(master, before)


def test_stop_right_after_an_exception_while_other_tasks_run(tmp_path) -> None:
    """The job dies of the exception while its other tasks still run (they are killed);
    the master is stopped at once."""
    before = descendants()
    with master_at_work(tmp_path) as master:
        inputs = ["raw://%d" % i for i in range(200)] + ["raw://boom"]
        job = Job(master=master.url).run(input=inputs, map=bad_map)
        with pytest.raises(JobError):
            job.wait(poll_interval=0.05, timeout=60)
    stop_within_deadline(master, before)


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "exec"])
def test_stop_while_workers_are_mid_protocol(tmp_path, zygote) -> None:
    """Every worker has sent its requests and a MSG and waits in its task."""
    before = descendants()
    with master_at_work(tmp_path, zygote) as master:
        job = Job(master=master.url).run(input=["raw://a", "raw://b"], map=waiting_map)
        poll_for(lambda: msg_events(master, job.name) >= 2, 60, "both workers to be mapping")
        assert running_tasks(master, job.name) == 2
    stop_within_deadline(master, before)


def test_stop_as_tasks_start(tmp_path) -> None:
    """Stopped as soon as the job is accepted: its first attempts are starting (job home,
    warm process, the first requests)."""
    before = descendants()
    with master_at_work(tmp_path) as master:
        job = Job(master=master.url).run(input=["raw://%d" % i for i in range(500)], map=tiny_map)
        poll_for(lambda: running_tasks(master, job.name) >= 1, 60, "a task to start")
    stop_within_deadline(master, before)
