#!/usr/bin/env python3
"""Tiny-job latency: two ``raw://`` inputs, a map and a reduce, three records read.

    python benchmarks/tiny_disco.py                      # one job, whole process
    python benchmarks/tiny_disco.py --latency 20 [--json FILE] [--master URL]

Without options the script runs the job once on the default master (the embedded one when
no master is configured) and checks the counts; ``benchmarks/run.py`` times the whole
process with ``../shared/bench/measure.py``, like the peers' tiny job.

With ``--latency N`` a master is started first and left running: by default an
``EmbeddedMaster`` in a separate process (``tiny_disco.py --serve``, so the client does not
share its interpreter with the master, as with a deployed master), with ``--in-process``
one in this process, or the master at ``--master URL``.  One warm-up job runs, then N jobs
are timed from ``Job.run`` to the last result record read by ``result_iterator``; the
per-phase times (submit, wait, read) are kept so a missed target can be explained.  The
figures are printed (and written to FILE) as JSON.
"""

from __future__ import annotations

# Only what a user's tiny script imports at the top: every task imports this module (the
# job's functions live here), so the harness's own modules (argparse, statistics,
# subprocess: about 10 ms per task) are imported where they are used.
import os
import sys
import time
from typing import Any

# The tiny job of issue 13: 2 inputs (one map task each, one wave on a 2-core node), a
# map and a reduce, 3 result records.
INPUTS = [
    "raw://the quick fox",
    "raw://the fox",
]


def expected_counts() -> dict[str, int]:
    """The answer, computed locally."""
    counts: dict[str, int] = {}
    for url in INPUTS:
        for word in url[len("raw://") :].split():
            counts[word] = counts.get(word, 0) + 1
    return counts


def tiny_map(line: Any, params: Any) -> Any:
    """map: a ``raw://`` entry is one ``str``; one ``(word, 1)`` per word."""
    for word in line.split():
        yield word, 1


def tiny_reduce(iter: Any, params: Any) -> Any:
    """reduce (2-argument form): sum per word."""
    totals: dict = {}
    for word, count in iter:
        totals[word] = totals.get(word, 0) + count
    return totals.items()


def _text(word: Any) -> str:
    return word.decode("utf-8") if isinstance(word, bytes) else str(word)


def run_once(master: str) -> tuple[dict[str, int], dict[str, float]]:
    """Run the tiny job; return the counts and the phase times in seconds."""
    from disco.core import Job, result_iterator

    t0 = time.perf_counter()
    job = Job(name="tiny_bench", master=master).run(input=INPUTS, map=tiny_map, reduce=tiny_reduce)
    t1 = time.perf_counter()
    results = job.wait()
    t2 = time.perf_counter()
    counts = {_text(w): int(c) for w, c in result_iterator(results)}
    t3 = time.perf_counter()
    phases = {"submit_s": t1 - t0, "wait_s": t2 - t1, "read_s": t3 - t2, "total_s": t3 - t0}
    return counts, phases


def check(counts: dict[str, int]) -> None:
    want = expected_counts()
    if counts != want:
        raise SystemExit("tiny job: wrong counts %r, expected %r" % (counts, want))


def latency(master: str, runs: int, warmup: int) -> dict[str, Any]:
    """Time ``runs`` jobs (after ``warmup``) on a running master."""
    import statistics

    for _ in range(warmup):
        counts, _phases = run_once(master)
        check(counts)
    samples = []
    for _ in range(runs):
        counts, phases = run_once(master)
        check(counts)
        samples.append(phases)
    totals = [p["total_s"] for p in samples]
    summary: dict[str, Any] = {
        "runs": runs,
        "warmup": warmup,
        "median_s": statistics.median(totals),
        "min_s": min(totals),
        "max_s": max(totals),
        "p90_s": sorted(totals)[max(0, int(round(0.9 * len(totals))) - 1)],
    }
    for key in ("submit_s", "wait_s", "read_s"):
        summary["median_" + key] = statistics.median(p[key] for p in samples)
    summary["samples"] = samples
    return summary


def serve() -> int:
    """Run an EmbeddedMaster until stdin closes; print its URL on the first line."""
    from disco.embedded import EmbeddedMaster

    with EmbeddedMaster(export_env=False) as em:
        print(em.url, flush=True)
        sys.stdin.read()
    return 0


class MasterProcess:
    """A master in a child process, stopped by closing its stdin.

    ``argv`` (default: ``tiny_disco.py --serve``) runs a script that prints the master's
    URL on its first line and serves until its stdin closes.
    """

    def __init__(self, argv: list[str] | None = None, timeout: float = 60.0) -> None:
        import subprocess

        env = {k: v for k, v in os.environ.items() if not k.startswith("DISCO_MASTER")}
        self.proc = subprocess.Popen(
            [sys.executable, *(argv or [os.path.abspath(__file__), "--serve"])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        # readline blocks until the master answers or the child dies (then it returns "")
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            self.close(timeout)
            raise SystemExit("master process did not start (exit status %s)" % self.proc.returncode)

    def close(self, timeout: float = 30.0) -> None:
        import subprocess

        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import logging

    from harness import emit, master_url, use_master

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=int, metavar="N", help="time N jobs on a running master")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--master", help="master URL (default: configured, else embedded)")
    ap.add_argument("--in-process", action="store_true", help="--latency: master in-process")
    ap.add_argument("--json", help="write the figures (phase seconds) to this file as JSON")
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.serve:
        return serve()
    if args.latency is None:
        t0 = time.perf_counter()
        master = master_url(args.master)
        t1 = time.perf_counter()
        counts, phases = run_once(master)
        check(counts)
        phases["master_s"] = t1 - t0
        if args.json:
            with open(args.json, "w") as f:
                json.dump(phases, f)
        print("tiny job ok: %d words" % sum(counts.values()))
        return 0
    if args.master:
        use_master(args.master)
        summary = latency(args.master, args.latency, args.warmup)
        summary["master"] = "given: " + args.master
    elif args.in_process:
        from disco.embedded import EmbeddedMaster

        with EmbeddedMaster() as em:
            summary = latency(em.url, args.latency, args.warmup)
        summary["master"] = "EmbeddedMaster in the timing process"
    else:
        server = MasterProcess()
        use_master(server.url)
        try:
            summary = latency(server.url, args.latency, args.warmup)
        finally:
            server.close()
        summary["master"] = "EmbeddedMaster in a separate process"
    emit(summary, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
