#!/usr/bin/env python3
"""The sort benchmark, this project's side: sort 100-byte records with a pipeline job.

    python benchmarks/sort_disco.py INPUT OUTPUT [--splits N] [--labels L] [--phases FILE]

INPUT is a file made by ``../shared/bench/gen_records.py`` (10-byte key, 90-byte payload
ending with a newline).  The job is ``examples/pipeline_sort.py`` as it stands: the
client samples keys for ``L - 1`` range boundaries and cuts INPUT into ``N`` line
ranges; stage ``partition`` (``split``) sorts each block of lines by key and writes each
key range's lines, as plain lines, to its label; stage ``sort`` (``group_label``,
``combine=True, sort=True``) reads them as ``(key, line)`` records with the example's
input stream, the framework sorts them by key, and the stage writes the lines back; the
client concatenates the outputs in label order into OUTPUT.  The embedded default master starts inside this process, as in the word count
benchmark.  ``--phases`` writes the seconds of each phase as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import pipeline_sort  # noqa: E402


def run_sort(inp: str, out: str, master: str | None, splits: int, labels: int) -> dict[str, float]:
    """Sort ``inp`` into ``out`` on ``master`` (or the default one); phase seconds."""
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    if master is None:
        from disco.embedded import default_master

        master = default_master()
    t1 = time.perf_counter()
    pipeline_sort.sort_file(inp, out, splits=splits, labels=labels, master=master)
    t2 = time.perf_counter()
    phases["master_s"] = round(t1 - t0, 3)
    phases["sort_s"] = round(t2 - t1, 3)
    return phases


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--splits", type=int, default=4, help="map tasks (input ranges)")
    ap.add_argument("--labels", type=int, default=4, help="sort tasks (key ranges)")
    ap.add_argument("--master", help="a running master's URL (default: embedded)")
    ap.add_argument("--phases", help="write phase seconds to this JSON file")
    args = ap.parse_args(argv)
    phases = run_sort(args.input, args.output, args.master, args.splits, args.labels)
    print(json.dumps(phases))
    if args.phases:
        Path(args.phases).write_text(json.dumps(phases) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
