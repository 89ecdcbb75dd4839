"""The coordinator's cost per event does not grow with the job (issue 13 "many tasks").

A job of N one-input map tasks is driven through the pure coordinator on one node with
two slots: every task started is finished at once, and a Tick arrives every 100 tasks
(the master ticks once a second).  If anything done per event walked the job's tasks
(a copy of the waiting queue per start, a scan of every task per tick), the time per
task would grow with N: a job 16 times bigger would cost 16 times more per task.
The bound is a generous ratio, not a wall-clock limit.
"""

from __future__ import annotations

import time

from disco.master.coordinator import Coordinator
from disco.master.states import (
    AttemptDone,
    JobFinished,
    JobSubmitted,
    NodesConfigured,
    StartTask,
    Tick,
)
from tests.master.test_coordinator import spec


def _run_job(n: int) -> float:
    """Seconds per task to run a job of ``n`` map tasks to ``ready``."""
    c = Coordinator(retry_delay=0.0)
    now = 1000.0
    c.handle(NodesConfigured((("n1", 2),), frozenset(), frozenset({"n1"})))
    inputs = [(0, ["raw://%d" % i]) for i in range(n)]
    t0 = time.perf_counter()
    out = c.handle(JobSubmitted("J", spec([("map", "split", False)], inputs), now))
    started = [i for i in out if isinstance(i, StartTask)]
    finished = False
    done = 0
    while started:
        s = started.pop()
        now += 0.001
        out = c.handle(AttemptDone(s.job, s.taskid, s.attempt, (), 0.001, now))
        done += 1
        if done % 100 == 0:
            out += c.handle(Tick(now))
        started += [i for i in out if isinstance(i, StartTask)]
        finished = finished or JobFinished("J", "ready") in out
    elapsed = time.perf_counter() - t0
    assert done == n and finished
    assert c.jobs["J"].counters() == [["map", 0, 0, 0, n, 0]]
    return elapsed / n


def test_time_per_task_does_not_grow_with_the_job():
    _run_job(500)  # warm up
    small = min(_run_job(2_500) for _ in range(2))
    big = _run_job(40_000)
    assert big < 4 * small, "per task: %.1f us at 2,500 tasks, %.1f us at 40,000" % (
        small * 1e6,
        big * 1e6,
    )
