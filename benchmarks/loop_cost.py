#!/usr/bin/env python3
"""The master's event loop per tiny map task: iterations, asyncio tasks, loop-thread CPU.

    python benchmarks/loop_cost.py [--tasks 1000] [--rounds 2]

An ``EmbeddedMaster`` runs in this process; after a warm-up job, each round runs a classic
job of ``--tasks`` tiny map tasks (``many_tasks_funcs.square_map``) and prints, divided by
the number of tasks: the loop's iterations (``BaseEventLoop._run_once`` calls), the
asyncio tasks created (a task factory counts them) and the CPU of the loop thread
(``/proc/self/task/<tid>/stat``: it does not count the thread pool or the client).  The
client polls the master over HTTP every 0.2 s like any client (a few iterations per
round).  Load-independent figures to compare two trees on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
import time
from asyncio import base_events
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from many_tasks_funcs import square_map  # noqa: E402

_HZ = os.sysconf("SC_CLK_TCK")
COUNTS = {"iterations": 0, "tasks": 0}
HANDLES: dict[str, int] = {}
LOOP_TID: list[int] = []


def _patch() -> None:
    run_once = base_events.BaseEventLoop._run_once

    def counted(self: Any) -> None:
        COUNTS["iterations"] += 1
        if not LOOP_TID:
            LOOP_TID.append(threading.get_native_id())
            self.set_task_factory(_factory)
        run_once(self)

    base_events.BaseEventLoop._run_once = counted  # type: ignore[method-assign]


def _count_handles() -> None:
    """Count the callbacks the loop runs, by name (``--handles``)."""
    from asyncio import events

    run = events.Handle._run

    def counted(self: Any) -> None:
        cb = self._callback
        owner = getattr(cb, "__self__", None)
        name = getattr(cb, "__qualname__", repr(cb))
        if name == "TaskStepMethWrapper" or type(owner).__name__ == "Task":
            name = "task step: %s" % getattr(owner.get_coro(), "__qualname__", "?")
        HANDLES[name] = HANDLES.get(name, 0) + 1
        run(self)

    events.Handle._run = counted  # type: ignore[method-assign]


def _factory(loop: Any, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
    COUNTS["tasks"] += 1
    return asyncio.Task(coro, loop=loop, **kwargs)


def thread_cpu_ms(tid: int) -> float:
    with open("/proc/self/task/%d/stat" % tid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / _HZ


def run(master: str, n: int) -> dict[str, Any]:
    from disco.core import Job, result_iterator

    c0 = dict(COUNTS)
    cpu0 = thread_cpu_ms(LOOP_TID[0])
    t0 = time.perf_counter()
    job = Job(name="loop_cost", master=master).run(
        input=["raw://%d" % i for i in range(n)], map=square_map
    )
    results = job.wait(poll_interval=0.2)
    wall = time.perf_counter() - t0
    cpu1 = thread_cpu_ms(LOOP_TID[0])
    c1 = dict(COUNTS)
    assert len(list(result_iterator(results))) == n
    job.purge()
    with open("/proc/loadavg") as f:
        load = float(f.read().split()[0])
    return {
        "tasks": n,
        "tasks_per_s": round(n / wall, 1),
        "iterations_per_task": round((c1["iterations"] - c0["iterations"]) / n, 2),
        "asyncio_tasks_per_task": round((c1["tasks"] - c0["tasks"]) / n, 2),
        "loop_cpu_ms_per_task": round((cpu1 - cpu0) / n, 3),
        "load": load,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--handles", action="store_true", help="count the loop's callbacks")
    ap.add_argument("--profile", help="cProfile (thread CPU clock) of the loop thread, to FILE")
    ap.add_argument("--strace", help="strace -f -c this process (all threads) to FILE")
    args = ap.parse_args(argv)
    _patch()
    if args.handles:
        _count_handles()
    from disco.embedded import EmbeddedMaster

    with EmbeddedMaster() as master:
        run(master.url, 4)  # warm-up
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile(time.thread_time)
            master.call(profiler.enable)
        tracer = None
        if args.strace:
            import signal
            import subprocess

            argv = ["strace", "-f", "-c", "-o", args.strace, "-p", str(os.getpid())]
            tracer = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
            time.sleep(1.0)  # attached (a benchmark's set-up, not a test)
        for _ in range(args.rounds):
            HANDLES.clear()
            print(json.dumps(run(master.url, args.tasks)), flush=True)
        if tracer is not None:
            tracer.send_signal(signal.SIGINT)
            tracer.wait()
        if profiler is not None:
            master.call(profiler.disable)
            profiler.dump_stats(args.profile)
        if args.handles:
            for name, count in sorted(HANDLES.items(), key=lambda kv: -kv[1])[:25]:
                print("%7.2f  %s" % (count / args.tasks, name))
    return 0


if __name__ == "__main__":
    sys.exit(main())
