"""The zygote rehearses the framework's per-task path before it forks anything.

A task forked from a warm process (``disco.node.zygote_process``) is a new process per
attempt (master-api.md 8.1) whose memory is its warm process's, copied on write.  Code
the warm process never ran costs every task its first-time work: CPython's first calls
(code objects made adaptive and specialized, lazily built caches, first allocations)
write to pages shared with the warm process, and each written page is copied.  So,
before its first fork, the zygote (whose memory every warm process and task inherits)
runs the framework's own path of a
tiny classic map task ``REHEARSALS`` times, as a forked task would run it: the protocol
messages (WORKER, TASK and the first INPUT at once, the replies read and decoded), the
``Task`` of the TASK reply, the input layers over a ``raw://`` input, the report's
states on a channel, the classic map loop, the record writer and its output file,
OUTPUT and MSG, DONE.

Nothing of it is seen outside: the replies come from a pipe of its own, what the
rehearsal writes for the master goes to ``/dev/null`` (the zygote's stderr is
the master's log, never a task's channel), the report's records to a pipe that is
then dropped, the scratch directory and output are in a temporary directory removed
afterwards, the job's own functions are never called (the map is ``_rehearsal_map``),
and the module state a task reads (the protocol's reader, the report, the active task,
``sys.stdout``, the working directory) is put back as it was.  A rehearsal that fails
is only a rehearsal that did not happen: tasks run as they would have.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

#: How many times the warm process runs the path (measured: benchmarks/NOTES.md).
REHEARSALS = 12

#: Rehearsals this process ran to their end (a forked task inherits the count).
rehearsed = 0


def _rehearsal_map(entry: Any, params: Any) -> Iterator[tuple[str, str]]:
    """The rehearsal's map function: one record, as a tiny map task yields."""
    yield str(entry), str(entry)


class _RehearsalJob:
    """The rehearsal's job: no attribute, so every parameter is the worker's."""


def rehearse(jobfile: str = "", times: int = REHEARSALS) -> int:
    """Run the per-task path ``times`` times in this process without side effects;
    returns how many rehearsals ran to their end."""
    global rehearsed
    if times <= 0:
        return 0
    try:
        # in memory if it can be: no disk write, and the outputs' fsync costs nothing
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
        where = shm or os.environ.get("TMPDIR") or "/tmp"
        _remove_stale(where)
        tmp = _mkdtemp(where)
    except OSError:
        return 0
    try:
        saved = _Saved()
    except OSError:
        _rmtree(tmp)
        return 0
    done = 0
    try:
        os.chdir(tmp)
        for n in range(times):
            _one(jobfile, n, saved)
            done += 1
    except Exception:
        pass  # the tasks do the work themselves, as without a rehearsal
    finally:
        saved.restore()
        _rmtree(tmp)
    rehearsed += done
    return done


_PREFIX = "disco-rehearsal-"


def _remove_stale(where: str) -> None:
    """Remove the directories of rehearsals whose process died before it removed them
    (``disco-rehearsal-<pid>-*``; a zygote killed with its master mid-rehearsal)."""

    for name in os.listdir(where):
        if not name.startswith(_PREFIX):
            continue
        pid = name[len(_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _rmtree(os.path.join(where, name))
        except OSError:
            pass  # alive (another user's): not ours to remove


# ``tempfile`` and ``shutil`` are not used here: the zygote would import them (and, through
# ``shutil``, ``bz2`` and ``lzma`` with their libraries) for these two calls alone, and
# every warm process and task is forked from its memory (docs/decisions.md, "A lean
# fork base").


def _mkdtemp(where: str) -> str:
    """A new directory ``<where>/disco-rehearsal-<pid>-<random>`` (mode 0700)."""
    while True:
        path = os.path.join(where, "%s%d-%s" % (_PREFIX, os.getpid(), os.urandom(6).hex()))
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def _rmtree(path: str) -> None:
    """Remove the tree at ``path``, ignoring errors (``shutil.rmtree(path, True)``)."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        entries = []
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                _rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            pass
    try:
        os.rmdir(path)
    except OSError:
        pass


class _Saved:
    """What the rehearsal changes in this process, put back by ``restore``."""

    def __init__(self) -> None:
        from disco.worker import protocol, report

        self.cwd = os.getcwd()
        self.stdout, self.stderr = sys.stdout, sys.stderr
        self.reader_fd = protocol._reader.fd
        self.path = report.reporter.path
        self.channel, self.channel_limit = report._channel, report._channel_limit
        self.pipes: list[int] = []
        _flush(sys.stdout, sys.stderr)
        devnull = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            self.fd2 = os.dup(2)  # the zygote's stderr (the master's log)
            try:
                os.dup2(devnull, 2, inheritable=False)
            except OSError:
                os.close(self.fd2)
                raise
        finally:
            os.close(devnull)

    def restore(self) -> None:
        from disco.worker import protocol, report

        _flush(sys.stdout, sys.stderr, self.stdout, self.stderr)
        sys.stdout, sys.stderr = self.stdout, self.stderr
        _flush(sys.stdout, sys.stderr)
        os.dup2(self.fd2, 2)
        os.close(self.fd2)
        _reset_task_state()
        protocol._reader.fd = self.reader_fd
        report.reporter.path = self.path
        report._channel, report._channel_limit = self.channel, self.channel_limit
        for fd in self.pipes:
            try:
                os.close(fd)
            except OSError:
                pass
        os.chdir(self.cwd)


def _reset_task_state() -> None:
    """The module state a task starts from, as it was before the rehearsal."""
    from disco.worker import protocol, report, taskrun

    protocol.reset()
    taskrun.reset()
    report.reporter.state = {}
    report.reporter._close()
    taskrun.set_active_task(None)


def _flush(*streams: Any) -> None:
    for stream in streams:
        try:
            stream.flush()
        except Exception:
            pass


def _replies(jobfile: str, n: int) -> bytes:
    """The node's replies to WORKER, TASK and the first INPUT of a tiny map task."""
    import json

    from disco.framing import encode_frame

    task = {
        "taskid": n,
        "master": "http://localhost:8989",
        "disco_port": 8989,
        "put_port": 8990,
        "ddfs_data": "",
        "disco_data": "",
        "stage": "map",
        "grouping": "split",
        "group": [0, "localhost"],
        "jobfile": jobfile,
        "jobname": "rehearsal@000:00000:00000",
        "host": "localhost",
    }
    inputs = ["done", [[0, "ready", 0, [[0, "raw://%d" % n]]]]]
    replies = [("OK", "ok"), ("TASK", task), ("INPUT", inputs)]
    return b"".join(encode_frame(t, json.dumps(p).encode()) for t, p in replies)


def _one(jobfile: str, n: int, saved: _Saved) -> None:
    """One tiny map task's path, as ``TaskRunner.main`` and the classic worker run it."""
    from disco.framing import PROTOCOL_VERSION
    from disco.worker import Worker, protocol, report, taskrun
    from disco.worker.classic.worker import Worker as ClassicWorker

    replies_r, replies_w = os.pipe2(os.O_CLOEXEC)
    channel_r, channel_w = os.pipe2(os.O_CLOEXEC)
    saved.pipes += [replies_r, replies_w, channel_r, channel_w]
    os.write(replies_w, _replies(jobfile, n))
    protocol._reader.fd = replies_r
    report._channel, report._channel_limit = channel_w, None
    report.reporter.path = "rehearsal"  # never a file: the states go to the channel
    report.reporter.state = {}

    sys.stdout = sys.stderr = protocol.MessageWriter(Worker)  # type: ignore[assignment]
    first = [
        ("WORKER", {"pid": os.getpid(), "version": PROTOCOL_VERSION}, False),
        ("TASK", "", True),
        ("INPUT", ["exclude", []], True),
    ]
    protocol._reader.prefetched_inputs = True
    Worker.send_all_nowait(first)
    task = Worker.task_from_reply(Worker.kept_reply())
    taskrun.set_active_task(task)
    taskrun.export_task_settings(task, {})
    worker = ClassicWorker(map=_rehearsal_map)
    job = _RehearsalJob()
    worker.warm_up(job, {})  # as a job's warm process does (disco.task.preload)
    task.makedirs()
    protocol._done_follows = True  # as ``TaskRunner.main`` runs the classic worker
    worker.run(task, job)
    worker.end(task, job)
    protocol._done_follows = False
    sys.stdout.flush()
    report.reporter.finished()
    Worker.send("DONE")
    os.read(channel_r, 65536)
    sys.stdout, sys.stderr = saved.stdout, saved.stderr
    _reset_task_state()
