#!/usr/bin/env python3
"""Local backend against a Dask cluster of 2 loopback workers, same run (issue 9).

    python benchmarks/dask_bench.py [--corpus FILE] [--size 16M] [--files 8]
                                    [--tasks 40] [--runs 3] [--json FILE]

Two jobs, each on both backends in this one run:

- the word count: the first ``--size`` bytes of ``--corpus`` (default: a generated text)
  cut into ``--files`` files at line ends, one map task per file, 2 partitions, a reduce;
  the counts are checked against a local ``Counter``;
- the per-task overhead: ``--tasks`` trivial map tasks (``raw://`` inputs, no reduce);
  ``seconds x slots / tasks`` is what one task costs a slot, from submit to results.

The local backend gets one node with 2 slots (``[["localhost", 2]]``); the Dask backend a
``dask scheduler`` and two ``dask worker --nthreads 1`` on 127.0.0.2 and 127.0.0.3 (2
slots too), started and stopped by this script.  Each figure is the median of
``--runs`` runs after one warm-up job.  The figures are printed (and written to FILE) as
JSON; ``benchmarks/dask_report.py`` renders them in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

logger = logging.getLogger("benchmarks.dask")


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    if text[-1:].upper() in units:
        return int(float(text[:-1]) * units[text[-1].upper()])
    return int(text)


def make_inputs(corpus: str | None, size: int, files: int, work: Path) -> list[str]:
    """``files`` files holding the first ``size`` bytes of the corpus, cut at line ends."""
    if corpus:
        with open(corpus, "rb") as f:
            data = f.read(size)
        data = data[: data.rfind(b"\n") + 1]
    else:
        words = b"alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()
        line = b" ".join(words) + b"\n"
        data = line * (size // len(line))
    paths, step, start = [], max(1, len(data) // files), 0
    for i in range(files):
        end = len(data) if i == files - 1 else data.find(b"\n", start + step) + 1 or len(data)
        path = work / ("part-%02d.txt" % i)
        path.write_bytes(data[start:end])
        paths.append(str(path))
        start = end
    return paths


def expected(paths: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                counts.update(line.split())
    return counts


def wc_map(line: Any, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def wc_reduce(iter: Any, params: Any) -> Any:
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)


def nop_map(entry: Any, params: Any) -> Any:
    yield entry, 1


def run_wordcount(url: str, paths: list[str]) -> tuple[float, Counter[str]]:
    from disco.core import Job, result_iterator

    t0 = time.perf_counter()
    job = Job(name="bench_wc", master=url).run(
        input=paths, map=wc_map, reduce=wc_reduce, partitions=2
    )
    results = job.wait()
    counts: Counter[str] = Counter()
    for word, count in result_iterator(results):
        counts[word.decode() if isinstance(word, bytes) else str(word)] += int(count)
    seconds = time.perf_counter() - t0
    job.purge()
    return seconds, counts


def run_tasks(url: str, tasks: int) -> float:
    from disco.core import Job, result_iterator

    t0 = time.perf_counter()
    job = Job(name="bench_tasks", master=url).run(
        input=["raw://%d" % i for i in range(tasks)], map=nop_map, partitions=None
    )
    found = sum(1 for _ in result_iterator(job.wait()))
    seconds = time.perf_counter() - t0
    if found != tasks:
        raise SystemExit("per-task job: %d results, expected %d" % (found, tasks))
    job.purge()
    return seconds


def measure(url: str, paths: list[str], want: Counter[str], tasks: int, runs: int) -> dict:
    run_wordcount(url, paths[:2])  # warm-up: zygote, job homes, connections
    wc, per = [], []
    for _ in range(runs):
        seconds, counts = run_wordcount(url, paths)
        if counts != want:
            raise SystemExit("word count: wrong counts on %s" % url)
        wc.append(seconds)
        per.append(run_tasks(url, tasks))
    return {
        "wordcount_s": statistics.median(wc),
        "wordcount_samples": wc,
        "tasks_s": statistics.median(per),
        "tasks_samples": per,
        "per_task_slot_s": statistics.median(per) * 2 / tasks,
    }


def main(argv: list[str] | None = None) -> int:
    from harness import emit

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", help="text to count (default: a generated text)")
    ap.add_argument("--size", default="16M")
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--tasks", type=int, default=40)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)

    from disco.embedded import EmbeddedMaster
    from tests.backends.dask_cluster import DaskCluster

    with tempfile.TemporaryDirectory(prefix="disco-dask-bench-") as tmp:
        work = Path(tmp)
        (work / "inputs").mkdir()
        paths = make_inputs(args.corpus, parse_size(args.size), args.files, work / "inputs")
        want = expected(paths)
        size = sum(os.path.getsize(p) for p in paths)
        logger.info(
            "word count of %d bytes in %d files; %d trivial tasks", size, len(paths), args.tasks
        )
        with EmbeddedMaster(root=work / "local", nodes=[("localhost", 2)]) as local:
            logger.info("local backend at %s", local.url)
            figures = {"local": measure(local.url, paths, want, args.tasks, args.runs)}
        cluster = DaskCluster(work / "dask")
        cluster.nthreads = 1
        try:
            cluster.start(["127.0.0.2", "127.0.0.3"])
            settings = {"DISCO_DASK_SCHEDULER": cluster.address}
            with EmbeddedMaster(root=work / "dask-master", settings=settings) as master:
                deadline = time.monotonic() + 60
                while {"127.0.0.2", "127.0.0.3"} - {
                    h for h, n in master.disco.nodeinfo().items() if n["connected"]
                }:
                    if time.monotonic() > deadline:
                        raise SystemExit("the Dask nodes did not join")
                    time.sleep(0.2)
                logger.info("Dask backend at %s (scheduler %s)", master.url, cluster.address)
                figures["dask"] = measure(master.url, paths, want, args.tasks, args.runs)
        finally:
            cluster.stop()
    result = {
        "input_bytes": size,
        "files": len(paths),
        "tasks": args.tasks,
        "runs": args.runs,
        "slots": 2,
        **figures,
        "wordcount_ratio": figures["dask"]["wordcount_s"] / figures["local"]["wordcount_s"],
        "overhead_per_task_s": figures["dask"]["per_task_slot_s"]
        - figures["local"]["per_task_slot_s"],
    }
    emit(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
