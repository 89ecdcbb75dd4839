"""Tasks forked from a job's warm process (disco.node.zygote_process): each task finds
fresh module state (a new process, or a reused worker given what a new one would find:
test_worker_reuse.py); a dead warm process costs nothing but a restart;
the warm process of one job never serves another; the node still syncs before DONE."""

from __future__ import annotations

import os
import signal

import pytest

from disco.core import Disco, Job, result_iterator
from disco.test import poll_for

pytestmark = pytest.mark.timeout(120)

#: Module state of the job's own module (this module, shipped to the workers).
SEEN: list[str] = []


def _parent_and_grandparent() -> list[int]:
    import os

    with open("/proc/%d/stat" % os.getppid()) as f:
        grandparent = int(f.read().rsplit(")", 1)[1].split()[1])
    return [os.getppid(), grandparent]


def state_map(entry, params):
    import os

    SEEN.append(entry)  # a task that reused a process would see the others' entries
    params.touched = getattr(params, "touched", 0) + 1  # job objects: one copy per task
    yield entry, [list(SEEN), params.touched, os.getpid(), _parent_and_grandparent()]


def test_module_state_does_not_leak_between_tasks_of_a_job(master) -> None:
    inputs = ["raw://t%d" % n for n in range(8)]
    job = Job(master=master.url).run(input=inputs, map=state_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert sorted(got) == ["t%d" % n for n in range(8)]
    for entry, (seen, touched, _pid, _parents) in got.items():
        assert seen == [entry]  # fresh module state in every task
        assert touched == 1
    warm = {parents[0] for *_rest, parents in got.values()}
    zygote = master.server.backend.runner.zygotes.current
    assert len(warm) == 1  # every task forked from the job's one warm process ...
    assert {parents[1] for *_rest, parents in got.values()} == {zygote.pid}  # ... the zygote's


def param_map(entry, params):
    yield entry, [params["k"], _parent_and_grandparent()[0]]


def test_each_job_gets_its_own_warm_process_with_its_own_job_pack(master) -> None:
    """The same functions with other parameters (another job pack): never the first
    job's warm process or objects."""
    first = Job(master=master.url).run(input=["raw://a"], map=param_map, params={"k": 1})
    ((_, (k1, warm1)),) = result_iterator(first.wait(timeout=60))
    second = Job(master=master.url).run(input=["raw://a"], map=param_map, params={"k": 2})
    ((_, (k2, warm2)),) = result_iterator(second.wait(timeout=60))
    assert (k1, k2) == (1, 2)
    assert warm1 != warm2


def gated_map(entry, params):
    import os
    import time

    gates = params["gates"]
    with open(os.path.join(gates, "started-%s-%d" % (entry, os.getpid())), "w") as f:
        f.write(str(os.getppid()))
    deadline = time.time() + 60
    while entry == "slow" and not os.path.exists(os.path.join(gates, "open")):
        if time.time() > deadline:
            raise RuntimeError("the gate never opened")
        time.sleep(0.02)
    yield entry, os.getppid()


def test_a_killed_warm_process_does_not_fail_the_job(master, tmp_path) -> None:
    """Killing the warm process kills the task it runs (an ordinary failed attempt,
    retried); the retry is forked from a new warm process and the job succeeds."""
    gates = tmp_path / "gates"
    gates.mkdir()
    job = Job(master=master.url).run(
        input=["raw://slow"], map=gated_map, params={"gates": str(gates)}
    )
    # the file appears before the task has written its parent's pid into it
    poll_for(
        lambda: any(f.read_text() for f in gates.glob("started-slow-*")),
        60,
        "the gated task to start",
    )
    (started,) = gates.glob("started-slow-*")
    warm = int(started.read_text())
    os.kill(warm, signal.SIGKILL)
    (gates / "open").write_text("")
    ((entry, parent),) = result_iterator(job.wait(timeout=60))
    assert entry == "slow"
    assert parent != warm  # the retry came from a new warm process
    events = "\n".join(str(e) for e in Disco(master.url).events(job.name))
    assert "killed by signal 9" in events or "Worker crashed" in events


def test_a_task_whose_index_sync_fails_is_not_reported_done(master, monkeypatch) -> None:
    """The node writes and syncs the index file at DONE before it hands the outputs
    over; when that fails the attempt fails (and is retried), with no DONE event."""
    real_fsync = os.fsync
    failed: list[str] = []

    def fsync(fd: int) -> None:
        path = os.readlink("/proc/self/fd/%d" % fd)
        if path.endswith(".results") and not failed:
            failed.append(path)
            raise OSError(5, "Input/output error (injected)")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)  # the in-process node's own system call
    job = Job(master=master.url).run(input=["raw://x"], map=param_map, params={"k": 3})
    ((entry, (k, _warm)),) = result_iterator(job.wait(timeout=60))
    assert (entry, k) == ("x", 3)
    assert failed  # the first attempt's index sync failed
    events = [str(e) for e in Disco(master.url).events(job.name)]
    text = "\n".join(events)
    assert "Could not write the index file" in text
    done = [e for e in events if "DONE: [map:0]" in e]
    assert len(done) == 1  # only the attempt whose index was synced


def test_a_warm_process_idle_beyond_the_limit_is_stopped(master) -> None:
    """At most MAX_WARM idle warm processes stay (the least recently used go first)."""
    from disco.node import zygote_process

    for n in range(zygote_process.MAX_WARM + 2):
        job = Job(master=master.url).run(input=["raw://a"], map=param_map, params={"k": n})
        list(result_iterator(job.wait(timeout=60)))
    zygote = master.server.backend.runner.zygotes.current

    def warm_count() -> int:
        with open("/proc/%d/task/%d/children" % (zygote.pid, zygote.pid)) as f:
            return len(f.read().split())

    # the next request trims; one more job makes sure it happened
    job = Job(master=master.url).run(input=["raw://a"], map=param_map, params={"k": 99})
    list(result_iterator(job.wait(timeout=60)))
    poll_for(lambda: warm_count() <= zygote_process.MAX_WARM, 10, "idle warm processes to go")


def fds_map(entry, params):
    import os
    import socket

    sockets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink("/proc/self/fd/%s" % fd)
        except OSError:
            continue
        if target.startswith("socket:") and int(fd) > 2:
            with socket.socket(fileno=os.dup(int(fd))) as sock:
                sockets.append(int(sock.type))
    yield entry, sockets


def test_a_forked_worker_holds_no_other_socket(master) -> None:
    """Only the worker's own stdio is a socket, besides its own channel to its warm
    process (a ``SOCK_SEQPACKET`` socket, to be reused): another worker's socket held
    open here would hide that worker's death (no end of file) from the node."""
    import socket

    job = Job(master=master.url).run(input=["raw://%d" % n for n in range(6)], map=fds_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert got == {str(n): [int(socket.SOCK_SEQPACKET)] for n in range(6)}
    job = Job(master=master.url).run(
        input=["raw://%d" % n for n in range(6)], map=fds_map, reuse_workers=False
    )
    got = dict(result_iterator(job.wait(timeout=60)))
    assert got == {str(n): [] for n in range(6)}


def printing_map(entry, params):
    print("line one of %s" % entry)
    print("line two")
    yield entry, 1


def test_a_pipelining_worker_leaves_the_same_events_in_the_same_order(master) -> None:
    """Our worker does not wait for the OK of its first MSGs and of OUTPUT: the events
    of a task are still every message, in the order it sent them, before DONE."""
    job = Job(master=master.url).run(input=["raw://a"], map=printing_map)
    assert dict(result_iterator(job.wait(timeout=60))) == {"a": 1}
    events = [str(e) for e in Disco(master.url).events(job.name)]
    task = [e for e in events if "[map:0]" in e]
    wanted = [
        "MSG: [map:0] line one of a",
        "MSG: [map:0] line two",
        "MSG: [map:0] Done: 1 entries mapped",
        "MSG: [map:0] Results sent to master",
        "DONE: [map:0] Task finished in",
    ]
    found = [next(i for i, e in enumerate(task) if w in e) for w in wanted]
    assert found == sorted(found)


# -- the per-job work a warm process does once (disco.worker.warm) -------------------------
def get(key):  # the job's own ``get``: the injected one (Task.get) must not replace it
    return "own get of %s" % key


def names_map(entry, params):
    import faulthandler
    import os
    import resource

    from disco.worker import report

    crash = os.readlink("/proc/self/fd/%d" % report._crash_fd) if report._crash_fd else ""
    yield (
        entry,
        {
            "partition": this_partition(),  # noqa: F821 - injected (library.md 10.4)
            "taskid": Task.taskid,  # noqa: F821
            "name": this_name(),  # noqa: F821
            "get": get("k"),
            "util": util.__name__,  # noqa: F821
            "limit": resource.getrlimit(resource.RLIMIT_AS)[0],
            "faulthandler": faulthandler.is_enabled(),
            "crash_file": crash,
            "pid": os.getpid(),
        },
    )


def test_tasks_forked_from_a_warm_process_get_their_own_task_names_limit_and_crash_file(
    master,
) -> None:
    """The names of library.md 10.4 that do not depend on the task, the memory limit and
    the crash handler are set up once in the warm process; each task still sees its own
    task in ``Task`` and the ``this_*`` helpers, the job's own definitions win, the limit
    is applied, and the crash handler writes to the attempt's own channel."""
    from disco.settings import DiscoSettings

    inputs = ["raw://n%d" % n for n in range(6)]
    settings = DiscoSettings(DISCO_WORKER_MAX_MEM="3G")
    job = Job(master=master.url, settings=settings).run(input=inputs, map=names_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert sorted(got) == ["n%d" % n for n in range(6)]
    assert sorted(v["taskid"] for v in got.values()) == list(range(6))
    crash_files = {v["crash_file"] for v in got.values()}
    assert len(crash_files) == 6  # one per attempt
    for value in got.values():
        assert value["name"] == job.name
        assert value["partition"] == 0
        assert value["get"] == "own get of k"
        assert value["util"] == "disco.util"
        assert value["limit"] == 3 << 30
        assert value["faulthandler"] is True
        # the crash handler writes to the task's own pipe to the warm process, which
        # writes the attempt's crash file only if the task does not finish
        assert value["crash_file"].startswith("pipe:")


def report_map(entry, params):
    """Waits until its warm process has written its report file (after
    ``LIVE_REPORT_AFTER`` seconds of running), then yields what the file says."""
    import json
    import os
    import time

    path = os.environ["DISCO_TASK_REPORT"]
    deadline = time.time() + 30
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.05)
    with open(path) as f:
        yield entry, json.load(f)


def _job_files(master, job) -> tuple[list[str], list[str]]:
    """The job's report directory and the node's worker registry, listed."""
    from disco.node.jobhome import jobhome_path

    backend = master.server.backend
    home = jobhome_path(backend.disco_data, "localhost", job.name)
    reports = os.path.join(home, ".disco-reports")
    listed = sorted(os.listdir(reports)) if os.path.isdir(reports) else []
    return listed, sorted(os.listdir(backend.registry.directory))


def test_a_finished_task_creates_no_report_crash_or_registry_file(master) -> None:
    """A task forked from a warm process sends its report's states and crash text
    through a pipe to the warm process, which writes no file for a task that finishes;
    its session is a line in the warm process's one registry file (an inode per file
    per task was a large part of a tiny task's cost on ext4).  (Workers not reused: a
    reused one is reaped when its warm process ends, test_worker_reuse.py.)"""
    job = Job(master=master.url).run(
        input=["raw://%d" % n for n in range(8)], map=fds_map, reuse_workers=False
    )
    assert len(dict(result_iterator(job.wait(timeout=60)))) == 8
    reports, registry = _job_files(master, job)
    assert reports == []
    tasks = [name for name in registry if name.endswith("-tasks")]
    assert len(tasks) == 1  # the warm process's, while it lives
    assert all(len(name.split("-")) == 4 for name in registry if name not in tasks)
    path = os.path.join(master.server.backend.registry.directory, tasks[0])

    def balanced() -> bool:
        with open(path) as f:
            lines = f.read().splitlines()
        forked = {line.split()[0][1:] for line in lines if line[0] == "+"}
        reaped = {line[1:] for line in lines if line[0] == "-"}
        return len(forked) >= 8 and forked == reaped  # the maps, and the shuffle

    poll_for(balanced, 10, "every task forked and reaped in the warm process's registry file")


def session_map(entry, params):
    import os

    from disco.node.orphans import start_time

    yield entry, [os.getpid(), start_time(os.getpid())]


def test_each_task_s_session_is_listed_with_its_start_time(master) -> None:
    """The warm process lists each task's session as ``+<pid> <start>`` after forking it
    (the start time read from ``/proc`` by ``_start_time``, not ``orphans.start_time``),
    with the task's real start time, and ``-<pid>`` after reaping it (workers not
    reused: a reused one is listed once, test_worker_reuse.py)."""
    job = Job(master=master.url).run(
        input=["raw://%d" % n for n in range(4)], map=session_map, reuse_workers=False
    )
    sessions = {tuple(v) for v in dict(result_iterator(job.wait(timeout=60))).values()}
    assert len(sessions) == 4
    tasks = [name for name in _job_files(master, job)[1] if name.endswith("-tasks")]
    path = os.path.join(master.server.backend.registry.directory, tasks[0])

    def listed() -> list[str]:
        with open(path) as f:
            return f.read().splitlines()

    poll_for(lambda: all("-%d" % pid in listed() for pid, _ in sessions), 10, "reaped")
    lines = listed()
    for pid, start in sessions:
        assert start > 0
        assert "+%d %d" % (pid, start) in lines
        assert lines.index("+%d %d" % (pid, start)) < lines.index("-%d" % pid)


def test_a_running_task_has_its_report_file_after_a_while(master) -> None:
    """The node's memory watch reads the task's limit from the report file: the warm
    process writes it for a task that runs longer than LIVE_REPORT_AFTER, and removes it
    when the task finishes."""
    from disco.settings import DiscoSettings

    settings = DiscoSettings(DISCO_WORKER_MAX_MEM="3G")
    job = Job(master=master.url, settings=settings).run(input=["raw://r"], map=report_map)
    ((entry, report),) = result_iterator(job.wait(timeout=60))
    assert entry == "r"
    assert report["max_mem"] == 3 << 30 and report["max_mem_setting"] == "3G"
    assert report["input"] == "raw://r"
    poll_for(lambda: _job_files(master, job)[0] == [], 10, "the report file to be removed")


def threads_and_fork_map(entry, params):
    """Job code that starts a thread, then forks: the forked child must see only its
    own thread (threading's at-fork hook, trimmed in the warm process, is whole again
    in the task)."""
    import os
    import threading

    gate = threading.Event()
    thread = threading.Thread(target=gate.wait)
    thread.start()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(w, b"%d" % threading.active_count())
        os._exit(0)
    os.waitpid(pid, 0)
    count = int(os.read(r, 16))
    gate.set()
    thread.join()
    import sys

    trimmed = len(getattr(sys.modules["__main__"], "_TRIMMED", ()))  # by the warm process
    yield entry, [count, threading.active_count(), trimmed]


def test_job_code_that_forks_with_threads_gets_threadings_at_fork_hook(master) -> None:
    """The warm process (one thread) trims threading's and logging's at-fork hooks
    (``_trim_fork_hooks``); a task puts them back before the job's code runs."""
    job = Job(master=master.url).run(input=["raw://t"], map=threads_and_fork_map)
    assert dict(result_iterator(job.wait(timeout=60))) == {"t": [1, 1, 2]}


from disco.worker.classic.worker import Worker as ClassicWorker  # noqa: E402


class TaskParamsWorker(ClassicWorker):
    """Resolves ``params`` from the running task: its parameters cannot be resolved
    once for every task in the warm process."""

    def getitem(self, key, job, jobargs, default=None):
        if key == "params":
            import disco.worker

            return getattr(disco.worker.active_task, "taskid", None)
        return super().getitem(key, job, jobargs, default)


def taskid_map(entry, params):
    yield entry, params


def test_parameters_are_resolved_once_only_for_the_base_getitem(master) -> None:
    """The warm process resolves the classic worker's parameters for every task (the
    base ``getitem`` reads only the job's arguments and attributes); a worker with its
    own ``getitem`` still resolves them in each task."""
    inputs = ["raw://a", "raw://b", "raw://c"]
    job = Job(master=master.url, worker=TaskParamsWorker()).run(input=inputs, map=taskid_map)
    assert sorted(dict(result_iterator(job.wait(timeout=60))).values()) == [0, 1, 2]
    job = Job(master=master.url).run(input=inputs, map=param_map, params={"k": 7})
    assert [k for k, _warm in dict(result_iterator(job.wait(timeout=60))).values()] == [7] * 3


def stuck_map(entry, params):
    """Starts a protocol message on the real output and never finishes it."""
    import os
    import time

    os.write(1, b'MSG 10 "ab')
    time.sleep(60)
    yield entry, 1


def test_a_task_the_node_gives_up_on_leaves_no_report_files(master) -> None:
    """The node kills a task stuck mid-message; its warm process then writes the
    unfinished task's report and crash files before it reports the exit: the runner
    removes them after that exit, so the job's report directory ends empty."""
    import dataclasses

    from disco.error import JobError

    backend = master.server.backend
    backend.limits = dataclasses.replace(backend.limits, message_timeout=0.5)
    master.disco.request("/disco/ctrl/save_settings", '{"max_failure_rate": "0"}')
    job = Job(master=master.url).run(input=["raw://x"], map=stuck_map)
    with pytest.raises(JobError, match="Worker stuck in the middle of a message"):
        job.wait(timeout=60)
    tasks = [name for name in _job_files(master, job)[1] if name.endswith("-tasks")]
    path = os.path.join(backend.registry.directory, tasks[0])

    def reaped() -> bool:
        with open(path) as f:
            lines = f.read().splitlines()
        return any(line[0] == "+" for line in lines) and any(line[0] == "-" for line in lines)

    poll_for(reaped, 10, "the stuck task reaped by its warm process")
    assert _job_files(master, job)[0] == []


def rehearsed_map(entry, params):
    import sys

    rehearse = sys.modules.get("disco.worker.rehearse")
    yield entry, getattr(rehearse, "rehearsed", 0)


def test_tasks_are_forked_after_the_zygote_rehearsed_their_path(master) -> None:
    """The zygote ran the framework's per-task path before it forked the job's warm
    process (``disco.worker.rehearse``): a task inherits the count; its results and the
    job's messages are only the job's own."""
    from disco.worker.rehearse import REHEARSALS

    inputs = ["raw://r%d" % n for n in range(4)]
    job = Job(master=master.url).run(input=inputs, map=rehearsed_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert got == {"r%d" % n: REHEARSALS for n in range(4)}
    events = [str(e) for e in Disco(master.url).events(job.name)]
    assert sum("Done: 1 entries mapped" in e for e in events) == 4  # the 4 maps' own
    assert not any("rehearsal" in e for e in events)
