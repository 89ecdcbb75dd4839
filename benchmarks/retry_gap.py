#!/usr/bin/env python3
"""Retries: how long after a worker is killed does its task run again (issue 13)?

    python benchmarks/retry_gap.py [--kills N] [--json FILE]

A master with the **default** retry policy (an ``EmbeddedMaster`` in this process, one
node with ``--slots`` slots, default ``4 × kills``, so that every retry finds a free slot
and the gap never includes waiting for another task to end) runs a job of ``2 × kills`` inputs whose map first records the time
it started (``time.time()``, in a file named ``<input>-<pid>`` under a scratch
directory), then works ``--seconds``.  A watcher SIGKILLs the first worker of each of
``kills`` inputs as soon as it has recorded its start, and notes the time of the kill.
The gap of one kill is the start recorded by the task's next attempt minus the kill
time: it covers noticing the death, the retry delay the master chose, scheduling, and
starting the new worker up to the job's own code.  The master's events give the retry
delay it chose (``Sleeping X seconds before retrying``) for each kill, so a slow gap can
be told apart from a long delay.  The answer of the job is checked.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

TARGET_S = 1.0  # issue 13: a killed worker's task restarts within 1 s


def timed_map(line: str, params: Any) -> Any:
    """Records ``<input>-<pid>`` = its start time, then works ``params['seconds']``."""
    import os
    import time

    path = os.path.join(params["piddir"], "%s-%d" % (line, os.getpid()))
    with open(path + ".tmp", "w") as f:
        f.write(repr(time.time()))
    os.rename(path + ".tmp", path)  # complete when visible
    time.sleep(params["seconds"])
    yield line, 1


class Killer(threading.Thread):
    """SIGKILLs the first attempt of ``count`` distinct inputs; notes the kill times."""

    def __init__(self, piddir: str, count: int) -> None:
        super().__init__(daemon=True)
        self.piddir, self.count = piddir, count
        self.killed: dict[str, tuple[int, float]] = {}  # input -> (pid, time of the kill)
        self.stop = threading.Event()

    def run(self) -> None:
        while len(self.killed) < self.count and not self.stop.is_set():
            for name in sorted(os.listdir(self.piddir)):
                if name.endswith(".tmp"):
                    continue
                line, _, pid = name.rpartition("-")
                if line not in self.killed and len(self.killed) < self.count:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except ProcessLookupError:
                        continue
                    self.killed[line] = (int(pid), time.time())
            time.sleep(0.005)


def attempt_starts(piddir: str) -> dict[str, list[tuple[float, int]]]:
    """input -> [(recorded start, pid)] of every attempt, oldest first."""
    found: dict[str, list[tuple[float, int]]] = {}
    for name in os.listdir(piddir):
        if name.endswith(".tmp"):
            continue
        line, _, pid = name.rpartition("-")
        with open(os.path.join(piddir, name)) as f:
            found.setdefault(line, []).append((float(f.read()), int(pid)))
    return {line: sorted(starts) for line, starts in found.items()}


def gaps(killer: Killer, piddir: str) -> dict[str, float]:
    """input -> seconds from the kill to the start recorded by the next attempt."""
    starts = attempt_starts(piddir)
    out = {}
    for line, (pid, killed_at) in killer.killed.items():
        later = [t for t, p in starts.get(line, []) if p != pid and t >= killed_at]
        if later:
            out[line] = later[0] - killed_at
    return out


_SLEEPING = re.compile(
    r"Task (\S+) failed on \"[^\"]*\", (\d+)th failures so far\. "
    r"Sleeping (\d+(?:\.\d+)?) seconds before retrying\."
)


def retry_delays(events: list[Any]) -> list[float]:
    """The delays the master chose, from its ``Sleeping X seconds`` events (10.3)."""
    return [float(m.group(3)) for _t, _h, text in events if (m := _SLEEPING.fullmatch(text))]


def run_job(
    master_url: str, piddir: str, kills: int, seconds: float, inputs: int | None = None
) -> tuple[Any, Killer]:
    """The job with ``inputs`` inputs (default ``2 × kills``), ``kills`` of whose first
    attempts are killed (also ``tests/e2e/test_retries.py``)."""
    from disco.core import result_iterator
    from disco.job import Job

    os.makedirs(piddir, exist_ok=True)
    killer = Killer(piddir, kills)
    killer.start()
    names = ["raw://%d" % i for i in range(2 * kills if inputs is None else inputs)]
    job = Job(master=master_url).run(
        input=names, map=timed_map, params={"piddir": piddir, "seconds": seconds}
    )
    try:
        results = job.wait(poll_interval=0.2, timeout=300)
    finally:
        killer.stop.set()
        killer.join(5)
    got = sorted(result_iterator(results))
    if got != sorted(("%d" % i, 1) for i in range(len(names))):
        raise SystemExit("retry job: wrong answer %r" % got)
    return job, killer


def measure(kills: int, seconds: float, slots_per_node: int) -> dict[str, Any]:
    from disco.core import Disco
    from disco.embedded import EmbeddedMaster

    with tempfile.TemporaryDirectory(prefix="disco-retry-") as tmp:
        slots = [("localhost", slots_per_node)]
        with EmbeddedMaster(os.path.join(tmp, "root"), nodes=slots) as m:
            piddir = os.path.join(tmp, "pids")
            job, killer = run_job(m.url, piddir, kills, seconds)
            found = gaps(killer, piddir)
            events = [tuple(e) for _o, e in Disco(m.url).events(job.name)]
    values = sorted(found.values())
    return {
        "kills": len(killer.killed),
        "restarted": len(values),
        "gaps_s": values,
        "median_s": statistics.median(values) if values else None,
        "max_s": max(values) if values else None,
        "retry_delays_s": retry_delays(events),
        "slots": slots_per_node,
        "inputs": 2 * kills,
        "target_s": TARGET_S,
    }


def main(argv: list[str] | None = None) -> int:
    from harness import emit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5, help="workers killed (default 5)")
    ap.add_argument("--seconds", type=float, default=0.5, help="work of each map task")
    ap.add_argument("--slots", type=int, help="slots of the node (default 4 x kills)")
    ap.add_argument("--json", help="write the figures to this file as JSON")
    args = ap.parse_args(argv)
    summary = measure(args.kills, args.seconds, args.slots or 4 * args.kills)
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
