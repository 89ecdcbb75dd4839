"""The many-tasks rows and section of ``docs/benchmarks.md`` (``bench_report`` calls them).

Record: ``disco/many_tasks.json`` written by ``benchmarks/many_tasks.py`` (via ``run.py``).
"""

from __future__ import annotations

import os
from typing import Any

import bench_report as br

LABELS = {
    "map": "tiny map tasks, no reduce",
    "map_reduce": "tiny map tasks + a reduce (2 partitions)",
    "big": "map job over `raw://` inputs",
}


def load_many_tasks(results: str) -> dict[str, Any] | None:
    """The figures of the run, or ``None`` when it had no many-tasks benchmark."""
    return br.load_json(os.path.join(results, br.OURS, "many_tasks.json"))


def _budget(job: dict[str, Any], rate: float, cores: int) -> str:
    """How the run's CPU per task compares with what ``rate`` tasks/s allows on ``cores``."""
    master = job.get("cpu_ms_per_task_master")
    node = job.get("cpu_ms_per_task_node")
    if master is None or node is None or not rate:
        return ""
    return (
        " %d tasks/s on %d cores leaves at most %s ms of CPU per task, all processes "
        "together; this run used %s."
        % (rate, cores, br.fmt(1000.0 * cores / rate, 1), br.fmt(master + node, 1))
    )


def _cpu(job: dict[str, Any]) -> str:
    master = job.get("cpu_ms_per_task_master")
    node = job.get("cpu_ms_per_task_node")
    if master is None or node is None:
        return "–"
    return "%s + %s" % (br.fmt(master, 1), br.fmt(node, 1))


def target_rows(d: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """Rows of the targets table, and why a target was not met."""
    rows: list[str] = []
    why: list[str] = []
    d = d or {}
    rate = d.get("target_tasks_per_s", 500.0)
    cores = d.get("cores") or os.cpu_count() or 1
    for key in ("map", "map_reduce"):
        job = d.get(key) or {}
        ok = job.get("met") if job else None
        rows.append(
            "| Many tasks: %s %s >= %d tasks/s on a running master | %s | %s |"
            % (
                "{:,}".format(job.get("tasks", 10_000)),
                LABELS[key],
                rate,
                "%s tasks/s (%s s)"
                % (br.fmt(job.get("tasks_per_s"), 1), br.fmt(job.get("total_s")))
                if job
                else "–",
                br._status(ok),
            )
        )
        if ok is False:
            why.append(
                "Many tasks (%s): %s tasks/s; CPU per task %s ms (master process + worker "
                "zygote and workers), load average %s during the run.%s Each task runs in "
                "a worker process of the job's warm process (reused for the job's next "
                "task when its task ended cleanly), speaking the worker protocol to the node "
                "runner, which runs in the master process; what that CPU is spent on: "
                '"What stands in the way of 500 tasks/s" and "Reused workers" in the notes '
                "below."
                % (
                    key,
                    br.fmt(job.get("tasks_per_s"), 1),
                    _cpu(job),
                    job.get("loadavg_1min"),
                    _budget(job, rate, cores),
                )
            )
    big = d.get("big") or {}
    ok = big.get("met") if big else None
    rows.append(
        "| Map job over %s `raw://` inputs within %d s | %s | %s |"
        % (
            "{:,}".format(big.get("tasks", 50_000)),
            d.get("target_big_s", 120),
            "%s s (%s tasks/s)" % (br.fmt(big.get("total_s"), 1), br.fmt(big.get("tasks_per_s"), 1))
            if big
            else "–",
            br._status(ok),
        )
    )
    if ok is False:
        why.append(
            "Map job over %s inputs: %s s (submit %s s); CPU per task %s ms.%s One map "
            'task per input, as in 0.5; see "What stands in the way of 500 tasks/s" in '
            "the notes below."
            % (
                "{:,}".format(big.get("tasks", 0)),
                br.fmt(big.get("total_s"), 1),
                br.fmt(big.get("submit_s")),
                _cpu(big),
                _budget(big, big.get("tasks", 0) / d.get("target_big_s", 120), cores),
            )
        )
    return rows, why


def many_tasks_section(d: dict[str, Any] | None, out: list[str]) -> None:
    """Append the many-tasks section (nothing when the run had none)."""
    if not d:
        return
    out.append("## Many tasks")
    out.append("")
    out.append(
        "`benchmarks/many_tasks.py`: an `EmbeddedMaster` in a separate process (one local "
        "node, one slot per core), a warm-up job, then each job timed from `Job.run` to the "
        "last record read by `result_iterator`; every result is checked. One `raw://<n>` "
        "input per map task. CPU ms per task: the master process (HTTP, coordinator, node "
        "runner) + its children (the worker zygote and the workers it forked)."
    )
    out.append("")
    out.append(
        "| job | tasks | submit s | wait s | read s | total s | tasks/s | CPU ms/task | load |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for key in ("map", "map_reduce", "big"):
        job = d.get(key)
        if not job:
            continue
        out.append(
            "| %s | %s | %s | %s | %s | %s | %s | %s | %s |"
            % (
                LABELS[key],
                "{:,}".format(job.get("tasks", 0)),
                br.fmt(job.get("submit_s")),
                br.fmt(job.get("wait_s")),
                br.fmt(job.get("read_s")),
                br.fmt(job.get("total_s")),
                br.fmt(job.get("tasks_per_s"), 1),
                _cpu(job),
                job.get("loadavg_1min", "–"),
            )
        )
    out.append("")
