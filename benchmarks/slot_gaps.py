#!/usr/bin/env python3
"""Where a node's task slots wait between two tiny tasks (issue 13 "many tasks").

    python benchmarks/slot_gaps.py [--tasks 1000] [--rounds 2]

An ``EmbeddedMaster`` runs in this process; after a warm-up job, each round runs a classic
job of ``--tasks`` tiny map tasks (``many_tasks_funcs.square_map``).  The node's side of
each attempt is stamped (``time.monotonic``) at: the attempt's start in the runner, the
request to the warm process, its pid, the worker's first bytes, DONE, the exit report,
the attempt's end; the next request after each end and after each exit (the freed
slot's next task); and the CPU time the machine spent idle (``/proc/stat``) during the
job.  Printed: the medians of each step, how busy the slots were (the share of
``slots x wall`` between a task's pid and its DONE) and the machine's idle share.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from many_tasks_funcs import square_map  # noqa: E402

STAMPS: dict[int, dict[str, float]] = {}  # id(attempt) -> step -> time
BY_PID: dict[int, dict[str, float]] = {}


def _patch() -> None:
    from disco.node import runner, zygote

    now = time.monotonic

    run, done, consume = runner._Attempt.run, runner._Attempt._done, runner._Attempt._consume

    async def stamped_run(self: Any, environ: Any) -> Any:
        stamps = STAMPS[id(self)] = {"start": now()}
        try:
            return await run(self, environ)
        finally:
            stamps["end"] = now()
            if self.proc is not None:
                stamps.update(BY_PID.get(self.proc.pid, {}))

    async def stamped_done(self: Any) -> Any:
        stamps = STAMPS[id(self)]
        stamps["done"] = now()
        close = self.outputs.close

        def stamped_close() -> None:
            stamps["sync"] = now()
            close()
            stamps["synced"] = now()

        self.outputs.close = stamped_close
        try:
            return await done(self)
        finally:
            stamps["done_ret"] = now()

    def stamped_consume(self: Any, data: bytes) -> Any:
        STAMPS[id(self)].setdefault("first", now())
        return consume(self, data)

    runner._Attempt.run = stamped_run  # type: ignore[method-assign]
    runner._Attempt._done = stamped_done  # type: ignore[method-assign]
    runner._Attempt._consume = stamped_consume  # type: ignore[method-assign]

    spawn, set_exit = zygote._WarmChannel.spawn, zygote.ZygoteProcess._set_exit

    async def stamped_spawn(self: Any, report: Any) -> Any:
        t = now()
        proc = await spawn(self, report)
        BY_PID[proc.pid] = {"spawn": t, "pid": now()}
        return proc

    def stamped_exit(self: Any, code: int) -> None:
        stamps = BY_PID.get(self.pid)
        if stamps is not None:
            stamps["exit"] = now()
        set_exit(self, code)

    zygote._WarmChannel.spawn = stamped_spawn  # type: ignore[method-assign]
    zygote.ZygoteProcess._set_exit = stamped_exit  # type: ignore[method-assign]


def _cpu_idle() -> tuple[float, float]:
    """(idle + iowait, total) jiffies of the machine."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields[:8])


def run(master: str, n: int) -> dict[str, Any]:
    from disco.core import Job, result_iterator

    STAMPS.clear()
    BY_PID.clear()
    idle0, total0 = _cpu_idle()
    t0 = time.monotonic()
    job = Job(name="slot_gaps", master=master).run(
        input=["raw://%d" % i for i in range(n)], map=square_map
    )
    results = job.wait(poll_interval=0.2)
    wall = time.monotonic() - t0
    idle1, total1 = _cpu_idle()
    assert len(list(result_iterator(results))) == n
    job.purge()
    attempts = list(STAMPS.values())

    def med(a: str, b: str, rows: list[dict[str, float]]) -> float | None:
        vals = [r[b] - r[a] for r in rows if a in r and b in r]
        return round(statistics.median(vals) * 1000, 3) if vals else None

    # the next spawn after each attempt's end (the freed slot's next task)
    spawns = sorted(r["spawn"] for r in attempts if "spawn" in r)

    def to_next_spawn(mark: str) -> list[float]:
        """For each attempt's ``mark`` time, how long until the next spawn after it."""
        out = []
        for t in sorted(r[mark] for r in attempts if mark in r):
            i = bisect.bisect_left(spawns, t)
            if i < len(spawns):
                out.append(spawns[i] - t)
        return out

    end_to_spawn = to_next_spawn("end")
    exit_to_spawn = to_next_spawn("exit")
    busy = sum(r["done"] - r["first"] for r in attempts if "done" in r and "first" in r)
    return {
        "tasks": n,
        "tasks_per_s": round(n / wall, 1),
        "ms_start_to_spawn": med("start", "spawn", attempts),
        "ms_spawn_to_pid": med("spawn", "pid", attempts),
        "ms_pid_to_first": med("pid", "first", attempts),
        "ms_first_to_done": med("first", "done", attempts),
        "ms_done_to_sync": med("done", "sync", attempts),
        "ms_sync_to_synced": med("sync", "synced", attempts),
        "ms_synced_to_done_ret": med("synced", "done_ret", attempts),
        "ms_done_ret_to_exit": med("done_ret", "exit", attempts),
        "ms_done_to_exit": med("done", "exit", attempts),
        "ms_exit_to_end": med("exit", "end", attempts),
        "ms_done_to_end": med("done", "end", attempts),
        "ms_end_to_next_spawn": round(statistics.median(end_to_spawn) * 1000, 3)
        if end_to_spawn
        else None,
        "ms_exit_to_next_spawn": round(statistics.median(exit_to_spawn) * 1000, 3)
        if exit_to_spawn
        else None,
        "slots_busy_share": round(busy / (2 * wall), 3),
        "machine_idle_share": round((idle1 - idle0) / max(1, total1 - total0), 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    _patch()
    from disco.embedded import EmbeddedMaster

    with EmbeddedMaster() as master:
        run(master.url, 4)  # warm-up
        for _ in range(args.rounds):
            print(json.dumps(run(master.url, args.tasks)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
