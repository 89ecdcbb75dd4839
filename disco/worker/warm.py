"""What a job's warm process does once for every task it will fork, and what a worker
process does between two tasks of its job when it is reused.

``disco.task.preload`` calls ``prepare`` after loading the job: each forked task then
finds the work done (its memory is the warm process's, copied on write).

**Reuse** (``disco.node.zygote_process``, docs/decisions.md "A worker process runs
several tasks of its job"): a worker that ended its task with DONE may run the next
task of the same job instead of being killed, when ``may_reuse`` finds it clean (one
thread, no child process, no descriptor left open, a modest peak of memory, nothing
big left to the exit, fewer than ``MAX_TASKS`` tasks run).  ``next_task`` then gives
the next task what a fresh fork would have given it: the job's objects unpickled again
(its ``params``, its worker), the job's own modules (those in the job home) imported
again, and the environment, ``sys.path``, ``sys.argv``, signal handlers and interval
timers of the first task.
What stays is the state of modules installed outside the job home (the standard
library's and third-party libraries' caches).
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

#: Tasks one worker process runs at most (bounds whatever a library leaks per task).
MAX_TASKS = 1000
#: A worker whose peak resident memory grew by this many bytes since its first task
#: started is not reused: a task that big gains nothing from reuse, and its exit gives
#: the memory back at once, where freeing its objects one by one would cost CPU.
MAX_PEAK_GROWTH = 64 << 20

_ITIMERS = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)


class _Start:
    """What a task finds when it starts in a process forked from the warm process."""

    def __init__(self) -> None:
        self.environ = dict(os.environ._data)  # type: ignore[attr-defined]  # bytes: no decoding
        self.path = list(sys.path)
        self.argv = list(sys.argv)
        self.modules = set(sys.modules)
        self.home = os.path.join(os.getcwd(), "")
        self.job_modules = [name for name in sys.modules if self.in_home(name)]
        self.signals: dict[int, Any] | None = None  # taken in the worker (``first_task``)
        self.base_rss = 0  # the worker's peak resident memory (KiB) as its first task starts
        self.tasks = 0

    def in_home(self, name: str) -> bool:
        """Was module ``name`` loaded from the job home (the job's own code)?"""
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        return isinstance(path, str) and os.path.abspath(path).startswith(self.home)


_start: _Start | None = None


def prepare(jobobjs: Any) -> None:
    """``jobobjs``: the job's unpickled ``(job, jobargs)``, ``None`` if they could not
    be loaded (each task then loads them and reports the failure)."""
    global _start
    from disco.worker import report, taskrun

    try:
        report.prepare_crash_handler()
    except OSError:
        pass  # each task sets up its own, as a process started by exec does
    taskrun.tune_malloc()  # inherited by every task forked from here
    if jobobjs is not None:
        taskrun.plan_memory_limit(getattr(jobobjs[0], "settings", None))
    taskrun.note_preloaded()
    _start = _Start()


def first_task() -> None:
    """In a reusable worker, before its first task: the signal handlers to give back,
    and its resident memory so far."""
    if _start is not None and _start.signals is None:
        import resource

        _start.signals = {sig: signal.getsignal(sig) for sig in signal.valid_signals()}
        _start.base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def may_reuse(keep: tuple[int, ...]) -> bool:
    """May this worker, whose task ended with DONE, run another task of its job?
    ``keep``: the descriptors above 2 it holds by design (its channel to the warm
    process, the crash handler's)."""
    from disco.worker import taskrun

    start = _start
    if start is None or not taskrun.task_done or taskrun._left_to_exit:
        return False  # failed, or big (what it left to the exit: ``leave_to_exit``)
    start.tasks += 1
    if start.tasks >= MAX_TASKS:
        return False
    if len(os.listdir("/proc/self/task")) != 1:
        return False  # a thread the task started
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        pass  # no child process: the usual case
    else:
        return False  # a child process the task started (running or ended)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if (peak - start.base_rss) * 1024 >= MAX_PEAK_GROWTH:
        return False
    # Only stdio and ``keep`` are open, and the descriptor listing them (one more).
    fds = {int(name) for name in os.listdir("/proc/self/fd")}
    return len(fds - {0, 1, 2, *keep}) <= 1


def next_task() -> None:
    """Give the next task of this worker what a fresh fork of the warm process would."""
    from disco import task as _task
    from disco.worker import protocol, report, taskrun

    start = _start
    assert start is not None
    modules = sys.modules
    known = start.modules
    for name in [*start.job_modules, *(modules.keys() - known)]:
        if name in modules:
            if start.in_home(name):
                del modules[name]  # imported afresh by the job's unpickling
            else:
                known.add(name)  # a library's: looked at once
    environ = os.environ
    if environ._data != start.environ:  # type: ignore[attr-defined]
        for key in [key for key in environ._data if key not in start.environ]:  # type: ignore[attr-defined]
            environ.pop(os.fsdecode(key), None)
        for key, value in start.environ.items():
            if environ._data.get(key) != value:  # type: ignore[attr-defined]
                environ[os.fsdecode(key)] = os.fsdecode(value)
    sys.path[:] = start.path
    sys.argv[:] = start.argv
    if start.signals is not None:
        for sig, handler in start.signals.items():
            if signal.getsignal(sig) is not handler and handler is not None:
                signal.signal(sig, handler)
    for timer in _ITIMERS:
        signal.setitimer(timer, 0)
    protocol.reset()
    report.use_channel(None)
    taskrun.reset()
    _task.reload_preloaded()
