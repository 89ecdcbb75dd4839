"""The Dask section of ``docs/benchmarks.md`` (``bench_report.build_report`` calls it).

Record: ``disco/dask.json`` written by ``benchmarks/dask_bench.py`` (via ``run.py``).
"""

from __future__ import annotations

import os
from typing import Any

import bench_report as br


def load_dask(results: str) -> dict[str, Any] | None:
    """The local-vs-Dask figures of the run, or ``None`` when it had none."""
    return br.load_json(os.path.join(results, br.OURS, "dask.json"))


def dask_section(d: dict[str, Any] | None, out: list[str]) -> None:
    """Append the Dask backend section (nothing when the run had none)."""
    if not d:
        return
    out.append("## Local backend vs a Dask cluster (2 loopback workers)")
    out.append("")
    out.append(
        "`benchmarks/dask_bench.py`, in one run: the same jobs on the local backend (one "
        "node, 2 slots) and on the Dask backend (a `dask scheduler` and two `dask worker "
        "--nthreads 1` on 127.0.0.2 and 127.0.0.3: 2 slots, same machine). Word count: "
        "%s in %d files, one map task per file, 2 partitions, counts checked. Per-task "
        "cost: %d trivial map tasks from submit to results read, times slots, divided by "
        "tasks. Medians of %d runs after a warm-up job."
        % (
            br.human_bytes(d.get("input_bytes")),
            d.get("files", 0),
            d.get("tasks", 0),
            d.get("runs", 0),
        )
    )
    out.append("")
    out.append("| backend | word count s | %d tasks s | per task per slot s |" % d.get("tasks", 0))
    out.append("|---|---:|---:|---:|")
    for name in ("local", "dask"):
        f = d.get(name) or {}
        out.append(
            "| %s | %s | %s | %s |"
            % (
                name,
                br.fmt(f.get("wordcount_s")),
                br.fmt(f.get("tasks_s")),
                br.fmt(f.get("per_task_slot_s"), 3),
            )
        )
    out.append("")
    out.append(
        "Dask ÷ local (word count): %s. Overhead of the Dask path per task: %s s "
        "(submit to the Dask worker, the task channel over HTTP, the result back)."
        % (br.fmt(d.get("wordcount_ratio")), br.fmt(d.get("overhead_per_task_s"), 3))
    )
    out.append("")
