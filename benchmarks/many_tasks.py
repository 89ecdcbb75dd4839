#!/usr/bin/env python3
"""Many tiny tasks on a running master (issue 13 "many tasks", issue 11 point 8).

    python benchmarks/many_tasks.py [--tasks 10000] [--inputs 50000] [--json FILE]
                                    [--master URL] [--skip-big]

A master is started first and left running (an ``EmbeddedMaster`` in a separate process,
as ``tiny_disco.py --latency`` does, or the one at ``--master URL``) and one warm-up job
runs.  Then, each timed from ``Job.run`` to the last record read by ``result_iterator``:

* ``map``: a classic job of ``--tasks`` tiny map tasks (one ``raw://<n>`` input each,
  no reduce); target >= 500 tasks/s;
* ``map_reduce``: the same map tasks feeding a reduce (two partitions); tasks/s counts
  the map tasks; target >= 500 tasks/s;
* ``big``: a classic map job over ``--inputs`` ``raw://`` inputs; target <= 120 s.

Every result is checked.  The CPU seconds the master process and its children (the
worker zygote and the workers it forked) used during each job are recorded too: on a
shared machine they say where the time per task goes better than the wall time does.
The figures are printed (and written to FILE) as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import use_master  # noqa: E402
from many_tasks_funcs import residue_map, square_map, sum_reduce  # noqa: E402
from tiny_disco import MasterProcess  # noqa: E402

TASKS_PER_S_TARGET = 500.0
BIG_INPUTS = 50_000
BIG_TARGET_S = 120.0
_HZ = os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> dict[str, float]:
    """CPU seconds of ``pid``, of its live children, and of its reaped children."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return {"self": 0.0, "children": 0.0}
    utime, stime, cutime, cstime = (int(x) / _HZ for x in fields[11:15])
    return {"self": utime + stime, "children": cutime + cstime}


def _kids(pid: int) -> list[int]:
    """The live children of ``pid`` (of every thread of it)."""
    kids: list[int] = []
    try:
        threads = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return kids
    for tid in threads:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                kids.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return kids


def _process_cpu(pid: int) -> dict[str, float]:
    """``master``: the master process; ``node``: its descendants (zygote, the jobs' warm
    processes, workers): each live one's own CPU and that of the children it reaped."""
    master = _cpu(pid)
    out = {"master": master["self"], "node": master["children"]}
    todo = _kids(pid)
    while todo:
        kid = todo.pop()
        c = _cpu(kid)
        out["node"] += c["self"] + c["children"]
        todo.extend(_kids(kid))
    return out


def run_job(
    master: str, pid: int | None, n: int, kind: str, purged: list[Any] | None = None
) -> dict[str, Any]:
    """One timed job of ``n`` map tasks; ``kind`` is ``map`` or ``map_reduce``.

    The job is purged at once, or, with ``purged``, appended to it to be purged after
    the last timed job (``purge_all``): deleting a job's files slows the creation of
    new ones on ext4 without a journal for a minute or more (benchmarks/NOTES.md,
    "taskpath"), which the next timed job would otherwise pay."""
    from disco.core import Job, result_iterator

    inputs = ["raw://%d" % i for i in range(n)]
    before = _process_cpu(pid) if pid else None
    t0 = time.perf_counter()
    if kind == "map_reduce":
        job = Job(name="many_mr", master=master).run(
            input=inputs, map=residue_map, reduce=sum_reduce, partitions=2
        )
    else:
        job = Job(name="many_map", master=master).run(input=inputs, map=square_map)
    t1 = time.perf_counter()
    results = job.wait(poll_interval=0.2)
    t2 = time.perf_counter()
    records = list(result_iterator(results))
    t3 = time.perf_counter()
    after = _process_cpu(pid) if pid else None
    if kind == "map_reduce":
        want: dict[str, int] = {}
        for i in range(n):
            want["r%d" % (i % 7)] = want.get("r%d" % (i % 7), 0) + i
        ok = {str(k): int(v) for k, v in records} == want
    else:
        ok = len(records) == n and dict(records) == {str(i): str(i * i) for i in range(n)}
    if not ok:
        raise SystemExit("%s job of %d tasks: wrong results" % (kind, n))
    total = t3 - t0
    out: dict[str, Any] = {
        "kind": kind,
        "tasks": n,
        "submit_s": round(t1 - t0, 3),
        "wait_s": round(t2 - t1, 3),
        "read_s": round(t3 - t2, 3),
        "total_s": round(total, 3),
        "tasks_per_s": round(n / total, 1),
    }
    if before and after:
        for key in ("master", "node"):
            out["cpu_ms_per_task_" + key] = round((after[key] - before[key]) * 1000 / n, 2)
    try:
        with open("/proc/loadavg") as f:
            out["loadavg_1min"] = float(f.read().split()[0])
    except OSError:
        pass
    if purged is None:
        job.purge()
    else:
        purged.append(job)
    return out


def purge_all(jobs: list[Any]) -> float:
    """Purge ``jobs``; the seconds it took."""
    t0 = time.perf_counter()
    for job in jobs:
        job.purge()
    return round(time.perf_counter() - t0, 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=10_000, help="tiny map tasks (default 10000)")
    ap.add_argument("--inputs", type=int, default=BIG_INPUTS, help="inputs of the big job")
    ap.add_argument("--skip-big", action="store_true", help="leave out the big job")
    ap.add_argument("--master", help="master URL (default: a master in a separate process)")
    ap.add_argument("--json", help="write the figures to this file as JSON")
    args = ap.parse_args(argv)
    server = None
    if args.master:
        master, pid = args.master, None
    else:
        server = MasterProcess()
        master, pid = server.url, server.proc.pid
    use_master(master)
    summary: dict[str, Any] = {
        "master": "given: " + master if args.master else "EmbeddedMaster in a separate process",
        "target_tasks_per_s": TASKS_PER_S_TARGET,
        "target_big_s": BIG_TARGET_S,
        "cores": os.cpu_count() or 1,
    }
    timed: list[Any] = []  # purged after the last timed job (run_job)
    try:
        run_job(master, None, 2, "map_reduce")  # warm-up: zygote, imports
        summary["map"] = run_job(master, pid, args.tasks, "map", timed)
        summary["map_reduce"] = run_job(master, pid, args.tasks, "map_reduce", timed)
        if not args.skip_big:
            summary["big"] = run_job(master, pid, args.inputs, "map", timed)
        summary["purge_s"] = purge_all(timed)
    finally:
        if server is not None:
            server.close()
    summary["map"]["met"] = summary["map"]["tasks_per_s"] >= TASKS_PER_S_TARGET
    summary["map_reduce"]["met"] = summary["map_reduce"]["tasks_per_s"] >= TASKS_PER_S_TARGET
    if "big" in summary:
        summary["big"]["met"] = summary["big"]["total_s"] <= BIG_TARGET_S
    text = json.dumps(summary, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
