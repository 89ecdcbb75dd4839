#!/usr/bin/env python3
"""CPU and page faults per forked task of a job of tiny map tasks (issue 13 "many tasks").

    python benchmarks/task_cost.py [--tasks 1000] [--rounds 2] [--strace FILE]

A master runs in a separate process (``tiny_disco.MasterProcess``); after a warm-up job,
each round runs a classic job of ``--tasks`` tiny map tasks (``many_tasks_funcs.square_map``)
and reads, from ``/proc``, the job's warm process (the zygote's child that forked the
job's tasks): its own CPU and minor faults (the forks, the reaping) and those of the
workers it reaped (``cutime``, ``cstime``, ``cminflt``).  Divided by the number of tasks,
these are the figures of one forked task that do not depend on the machine's load the
way the wall time does.  The master's own CPU per task is printed too.

``--strace FILE`` attaches ``strace -f -c`` to the warm process of one more job
(the counts per syscall of the warm process and of every task it forked) and writes
its summary to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import use_master  # noqa: E402
from many_tasks import _kids  # noqa: E402
from many_tasks_funcs import square_map  # noqa: E402
from tiny_disco import MasterProcess  # noqa: E402

_HZ = os.sysconf("SC_CLK_TCK")
STRACE_ARGS: list[str] = []
PERF: list[bool] = []
PERF_ARGS = os.environ.get("TASK_COST_PERF_ARGS", "-g").split()


def stat(pid: int) -> dict[str, float]:
    """``/proc/<pid>/stat``: CPU ms and minor faults of the process and its reaped children."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    minflt, cminflt = int(fields[7]), int(fields[8])
    utime, stime, cutime, cstime = (int(x) * 1000 / _HZ for x in fields[11:15])
    return {
        "user": utime,
        "sys": stime,
        "minflt": minflt,
        "c_user": cutime,
        "c_sys": cstime,
        "c_minflt": cminflt,
    }


def descendants(pid: int) -> dict[int, int]:
    """Every descendant of ``pid`` -> its depth below it."""
    out: dict[int, int] = {}
    todo = [(kid, 1) for kid in _kids(pid)]
    while todo:
        kid, depth = todo.pop()
        out[kid] = depth
        todo.extend((k, depth + 1) for k in _kids(kid))
    return out


def run(master: str, pid: int, n: int, strace: str | None = None) -> dict[str, Any]:
    from disco.core import Job, result_iterator

    before = set(descendants(pid))
    m0 = stat(pid)
    inputs = ["raw://%d" % i for i in range(n)]
    t0 = time.perf_counter()
    job = Job(name="task_cost", master=master).run(input=inputs, map=square_map)
    tracer = None
    if strace:
        deadline = time.monotonic() + 30
        warm = None
        while warm is None and time.monotonic() < deadline:
            new = [p for p, d in descendants(pid).items() if d == 2 and p not in before]
            warm = new[0] if new else None
        if warm is not None:
            if PERF:
                argv = ["perf", "record", "-q", *PERF_ARGS, "-o", strace, "-p", str(warm)]
                with open(strace + ".maps", "w") as f, open("/proc/%d/maps" % warm) as m:
                    f.write(m.read())
            else:
                argv = ["strace", "-f", *(STRACE_ARGS or ["-c"]), "-o", strace, "-p", str(warm)]
            tracer = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
    results = job.wait(poll_interval=0.2)
    wall = time.perf_counter() - t0
    records = list(result_iterator(results))
    assert len(records) == n, len(records)
    m1 = stat(pid)
    warms = [p for p, d in descendants(pid).items() if d == 2 and p not in before]
    if tracer is not None:
        tracer.send_signal(2)  # SIGINT: perf writes its file
        tracer.wait()
    out: dict[str, Any] = {"tasks": n, "wall_s": round(wall, 2), "tasks_per_s": round(n / wall, 1)}
    out["master_cpu_ms"] = round((m1["user"] + m1["sys"] - m0["user"] - m0["sys"]) / n, 3)
    if len(warms) == 1:
        w = stat(warms[0])
        out["warm_cpu_ms"] = round((w["user"] + w["sys"]) / n, 3)
        out["warm_minflt"] = round(w["minflt"] / n, 1)
        out["task_user_ms"] = round(w["c_user"] / n, 3)
        out["task_sys_ms"] = round(w["c_sys"] / n, 3)
        out["task_minflt"] = round(w["c_minflt"] / n, 1)
    else:
        out["warm_processes"] = warms
    with open("/proc/loadavg") as f:
        out["load"] = float(f.read().split()[0])
    job.purge()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--strace", help="strace -c -f the warm process of one more job")
    ap.add_argument("--strace-full", action="store_true", help="every call, not -c")
    ap.add_argument("--perf", help="perf record -g the warm process of one more job")
    args = ap.parse_args(argv)
    if args.perf:
        args.strace = args.perf
        PERF.append(True)
    if args.strace_full:
        STRACE_ARGS[:] = ["-tt", "-s", "120"]
    server = MasterProcess()
    try:
        use_master(server.url)
        run(server.url, server.proc.pid, 4)  # warm-up
        for _ in range(args.rounds):
            print(json.dumps(run(server.url, server.proc.pid, args.tasks)), flush=True)
        if args.strace:
            print(json.dumps(run(server.url, server.proc.pid, args.tasks, args.strace)))
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
