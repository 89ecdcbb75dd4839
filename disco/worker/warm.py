"""What a job's warm process does once for every task it will fork.

``disco.task.preload`` calls ``prepare`` after loading the job: each forked task then
finds the work done (its memory is the warm process's, copied on write), and a task
stays a new process per attempt (master-api.md 8.1).
"""

from __future__ import annotations

from typing import Any


def prepare(jobobjs: Any) -> None:
    """``jobobjs``: the job's unpickled ``(job, jobargs)``, ``None`` if they could not
    be loaded (each task then loads them and reports the failure)."""
    from disco.worker import report, taskrun

    try:
        report.prepare_crash_handler()
    except OSError:
        pass  # each task sets up its own, as a process started by exec does
    taskrun.tune_malloc()  # inherited by every task forked from here
    if jobobjs is not None:
        taskrun.plan_memory_limit(getattr(jobobjs[0], "settings", None))
    taskrun.note_preloaded()
