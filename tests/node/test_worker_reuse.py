"""A worker process runs several tasks of its job (disco.worker.warm, docs/decisions.md
"A worker process runs several tasks of its job"): after DONE, a clean worker takes the
job's next task instead of being killed, and that task finds what a fresh process forked
from the job's warm process would: the job's objects and its own modules as loaded, the
environment, paths, signal handlers and timers of the first task.  A worker that is not
clean (a thread, a child process, an open descriptor, a large peak of memory, objects
left to the exit), a worker
whose task failed, and the workers of a job that turns reuse off are never reused."""

from __future__ import annotations

import pytest

from disco.core import Disco, Job, result_iterator
from disco.embedded import EmbeddedMaster
from disco.test import poll_for
from tests.conftest import _assert_no_leaked_workers, child_pids
from tests.faults.test_kills import alive

pytestmark = pytest.mark.timeout(120)

#: Module state of the job's own module (this module, shipped to the workers).
SEEN: list[str] = []
COUNTER = 0


@pytest.fixture
def one_slot(tmp_path):
    """A master with one slot: each task runs after the previous one's DONE."""
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[("localhost", 1)], retry_delay=0.0) as m:
        yield m
    _assert_no_leaked_workers(before)


def state_map(entry, params):
    import os
    import signal
    import sys

    global COUNTER
    COUNTER += 1  # a rebinding of the module's global
    SEEN.append(entry)  # an in-place change of the module's global
    params.touched = getattr(params, "touched", 0) + 1  # job objects: one copy per task
    found = {
        "pid": os.getpid(),
        "seen": list(SEEN),
        "counter": COUNTER,
        "touched": params.touched,
        "env": os.environ.get("LEFT_BY_A_TASK"),
        "path": "/left/by/a/task" in sys.path,
        "argv": list(sys.argv),
        "cwd": os.getcwd(),
        "usr1": signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL,
        "alarm": signal.getitimer(signal.ITIMER_REAL)[0],
    }
    # what a task may leave behind: none of it reaches the next task
    os.environ["LEFT_BY_A_TASK"] = entry
    sys.path.append("/left/by/a/task")
    sys.argv.append("left")
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    yield entry, found


def test_a_worker_runs_several_tasks_each_with_what_a_fresh_fork_would_find(one_slot) -> None:
    inputs = ["raw://t%02d" % n for n in range(20)]
    job = Job(master=one_slot.url).run(input=inputs, map=state_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert sorted(got) == ["t%02d" % n for n in range(20)]
    pids = {found["pid"] for found in got.values()}
    assert len(pids) < len(inputs)  # workers were reused
    assert len({found["cwd"] for found in got.values()}) == 1  # the job home
    for entry, found in got.items():
        assert found["seen"] == [entry]  # the job's own module imported afresh
        assert found["counter"] == 1
        assert found["touched"] == 1  # the job's objects unpickled afresh
        assert found["env"] is None
        assert found["path"] is False
        assert found["argv"] == got["t00"]["argv"] and "left" not in found["argv"]
        assert found["usr1"] is True
        assert found["alarm"] == 0.0


def thread_map(entry, params):
    import os
    import threading

    threading.Thread(target=lambda: None).start()  # ends at once: joined, still there
    event = threading.Event()
    threading.Thread(target=event.wait, daemon=True).start()  # still running at DONE
    yield entry, [os.getpid(), None]


def child_map(entry, params):
    import os
    import subprocess

    child = subprocess.Popen(["sleep", "60"])  # still running at DONE
    yield entry, [os.getpid(), child.pid]


def fd_map(entry, params):
    import os

    global KEPT
    KEPT = os.open("/dev/null", os.O_RDONLY)  # left open
    yield entry, [os.getpid(), None]


def memory_map(entry, params):
    import os

    block = b"x" * (100 << 20)  # a peak above MAX_PEAK_GROWTH (64 MiB), written
    del block
    yield entry, [os.getpid(), None]


def leaving_map(entry, params):
    import os

    from disco.worker.taskrun import leave_to_exit

    leave_to_exit(list(range(10)))  # what a big task leaves to its process's exit
    yield entry, [os.getpid(), None]


@pytest.mark.parametrize("fun", [thread_map, child_map, fd_map, memory_map, leaving_map])
def test_a_worker_left_unclean_by_its_task_is_not_reused(one_slot, fun) -> None:
    inputs = ["raw://%d" % n for n in range(4)]
    job = Job(master=one_slot.url).run(input=inputs, map=fun)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert sorted(got) == ["0", "1", "2", "3"]
    pids = [pid for pid, _child in got.values()]
    assert len(set(pids)) == 4  # a new process for every task
    for pid in pids:  # each killed with its process group, as at DONE (8.7)
        poll_for(lambda pid=pid: not alive(pid), 10, "worker %d to die" % pid)
    for _pid, child in got.values():
        if child is not None:
            poll_for(lambda child=child: not alive(child), 10, "its child %d to die" % child)


def pid_map(entry, params):
    import os

    yield entry, os.getpid()


def test_a_job_can_turn_reuse_off(one_slot) -> None:
    """``reuse_workers=False`` (a job argument, or the worker's): a process per task."""
    from disco.worker.classic.worker import Worker

    inputs = ["raw://%d" % n for n in range(6)]
    job = Job(master=one_slot.url).run(input=inputs, map=pid_map, reuse_workers=False)
    assert len(set(dict(result_iterator(job.wait(timeout=60))).values())) == 6
    job = Job(master=one_slot.url, worker=Worker(reuse_workers=False))
    job.run(input=inputs, map=pid_map)
    assert len(set(dict(result_iterator(job.wait(timeout=60))).values())) == 6
    # and on by default, the same job otherwise
    job = Job(master=one_slot.url).run(input=inputs, map=pid_map)
    assert len(set(dict(result_iterator(job.wait(timeout=60))).values())) < 6


def test_the_node_s_environment_can_turn_reuse_off(tmp_path, monkeypatch) -> None:
    """``DISCO_WORKER_REUSE=0`` in the node's environment: a process per task."""
    monkeypatch.setenv("DISCO_WORKER_REUSE", "0")
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[("localhost", 1)]) as master:
        job = Job(master=master.url).run(input=["raw://%d" % n for n in range(6)], map=pid_map)
        assert len(set(dict(result_iterator(job.wait(timeout=60))).values())) == 6
    _assert_no_leaked_workers(before)


def test_a_reused_worker_is_listed_once_in_the_worker_registry(one_slot) -> None:
    """The warm process lists each worker's session when it forks it (the node's
    orphan sweep, disco.node.orphans); a reused worker is the same session."""
    import os

    from tests.node.test_warm_process import _job_files

    job = Job(master=one_slot.url).run(input=["raw://%d" % n for n in range(8)], map=pid_map)
    pids = set(dict(result_iterator(job.wait(timeout=60))).values())
    assert len(pids) < 8
    tasks = [name for name in _job_files(one_slot, job)[1] if name.endswith("-tasks")]
    path = os.path.join(one_slot.server.backend.registry.directory, tasks[0])
    with open(path) as f:
        lines = f.read().splitlines()
    for pid in pids:
        assert sum(line.startswith("+%d " % pid) for line in lines) == 1, lines


def failing_once_map(entry, params):
    import os

    marker = os.path.join(params.where, "failed-%s" % entry)
    if entry == "2" and not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write(str(os.getpid()))
        from disco.error import DataError

        raise DataError("first attempt fails", "raw://2")  # ERROR: retried
    yield entry, os.getpid()


def test_the_worker_of_a_failed_task_is_killed_not_reused(one_slot, tmp_path) -> None:
    from disco.core import Params

    inputs = ["raw://%d" % n for n in range(5)]
    job = Job(master=one_slot.url).run(
        input=inputs, map=failing_once_map, params=Params(where=str(tmp_path))
    )
    got = dict(result_iterator(job.wait(timeout=60)))
    assert sorted(got) == ["0", "1", "2", "3", "4"]
    failed = int((tmp_path / "failed-2").read_text())
    poll_for(lambda: not alive(failed), 10, "the failed task's worker to die")
    assert got["2"] != failed  # the retry ran in another process
    events = [msg for _offset, (_ts, _host, msg) in Disco(one_slot.url).events(job.name)]
    assert any("first attempt fails" in line for line in events)


def crash_once_map(entry, params):
    import ctypes
    import os

    ran = os.path.join(params.where, "ran-%d" % os.getpid())
    crashed = os.path.join(params.where, "crashed")
    if os.path.exists(ran) and not os.path.exists(crashed):  # a worker's second task
        with open(crashed, "w") as f:
            f.write(str(os.getpid()))
        ctypes.string_at(0)  # a segfault in a reused worker's task
    open(ran, "w").close()
    yield entry, os.getpid()


def test_a_crash_in_a_reused_worker_is_reported_from_its_own_channel(one_slot, tmp_path) -> None:
    """Each task of a reused worker has its own report pipe to the warm process: a
    crash in a later task leaves that attempt's crash traceback."""
    from disco.core import Params

    inputs = ["raw://%d" % n for n in range(8)]
    job = Job(master=one_slot.url).run(
        input=inputs, map=crash_once_map, params=Params(where=str(tmp_path))
    )
    got = dict(result_iterator(job.wait(timeout=60)))
    assert sorted(got) == [str(n) for n in range(8)]
    crashed = int((tmp_path / "crashed").read_text())  # a worker that ran a task before
    assert crashed in got.values()
    events = "\n".join(msg for _offset, (_ts, _host, msg) in Disco(one_slot.url).events(job.name))
    assert "Fatal Python error: Segmentation fault" in events, events
    assert "in crash_once_map" in events, events


def test_reused_workers_end_with_their_warm_process(one_slot) -> None:
    from disco.node import zygote_process

    job = Job(master=one_slot.url).run(input=["raw://%d" % n for n in range(6)], map=pid_map)
    pids = set(dict(result_iterator(job.wait(timeout=60))).values())
    assert any(alive(pid) for pid in pids)  # waiting for the job's next task
    # other jobs push the job's warm process out (at most MAX_WARM idle ones stay)
    for n in range(zygote_process.MAX_WARM + 1):
        other = Job(master=one_slot.url).run(input=["raw://a"], map=pid_map, params={"n": n})
        list(result_iterator(other.wait(timeout=60)))
    poll_for(lambda: not any(alive(pid) for pid in pids), 20, "the reused workers to end")


def test_a_worker_runs_at_most_max_tasks(one_slot) -> None:
    from collections import Counter

    from disco.worker.warm import MAX_TASKS

    n = MAX_TASKS + 50
    job = Job(master=one_slot.url).run(input=["raw://%d" % i for i in range(n)], map=pid_map)
    got = dict(result_iterator(job.wait(timeout=110)))
    assert len(got) == n
    per_worker = Counter(got.values())
    assert max(per_worker.values()) <= MAX_TASKS
    assert len(per_worker) >= 2
