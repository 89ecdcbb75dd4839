"""``disco debug``: the master's state in one report (library.md 18.2).

0.5's ``disco debug`` opened an Erlang shell on the master.  A Python master has none,
so this command gathers what one would look at there from the read-only control API
(master-api.md 2.3): version and runtime settings, the config table, every node with
its slots, counters and running tasks, both blacklists, and the recent jobs with their
per-stage task counts.  ``collect`` returns it as a dict (``disco debug --json``);
``render`` formats it for people.
"""

from __future__ import annotations

import time
from typing import Any

from disco.error import CommError

STAGE_COLUMNS = ("pending", "waiting", "running", "done", "failed")


def collect(disco: Any, max_jobs: int = 20) -> dict[str, Any]:
    """The master's state: ``disco`` is a ``disco.core.Disco`` client.

    Every active job is listed with its ``jobinfo``; of the others only the newest,
    up to ``max_jobs`` jobs in all.
    """
    joblist = disco.joblist()
    jobs = []
    for position, (start, status, name) in enumerate(joblist):
        if status != "active" and position >= max_jobs:
            continue
        try:
            info = disco.jobinfo(name)
        except CommError as e:  # cleaned between the two calls
            if e.code != 404:
                raise
            continue
        jobs.append(
            {
                "name": name,
                "status": status,
                "started": start,
                "owner": info.get("owner", ""),
                "worker": info.get("worker", ""),
                "stages": [
                    dict(zip(("stage", *STAGE_COLUMNS), row, strict=False))
                    for row in info.get("pipeline", [])
                ],
                "running_on": sorted(info.get("hosts", [])),
                "results": len(info.get("results", [])),
            }
        )
    nodes = disco.nodeinfo()
    running = [
        {"host": host, "job": job}
        for host, node in sorted(nodes.items())
        for job in node.get("tasks", [])
    ]
    return {
        "master": disco.master,
        "version": disco.master_version(),
        "settings": disco._json("/disco/ctrl/get_settings"),
        "config": disco.config,
        "nodes": nodes,
        "blacklist": disco._json("/disco/ctrl/get_blacklist"),
        "gc_blacklist": disco._json("/disco/ctrl/get_gc_blacklist"),
        "jobs_total": len(joblist),
        "jobs": jobs,
        "running_tasks": running,
    }


def _table(rows: list[list[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _when(seconds: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(seconds)))
    except (TypeError, ValueError, OverflowError):
        return str(seconds)


def render(state: dict[str, Any]) -> str:
    """``state`` from :func:`collect` as text sections."""
    lines = ["Disco master at %s (version %s)" % (state["master"], state["version"])]
    settings = state["settings"]
    lines.append("Settings: " + ", ".join("%s=%s" % (k, settings[k]) for k in sorted(settings)))

    lines += ["", "Config table (host spec, max workers):"]
    lines += _table([[str(h), str(n)] for h, n in state["config"]]) or ["  (empty)"]

    lines += ["", "Nodes:"]
    header = ["host", "workers", "running", "connected", "blacklisted", "ok", "data_error",
              "error", "disk free KiB", "disk used KiB"]  # fmt: skip
    rows = [header]
    for host, node in sorted(state["nodes"].items()):
        rows.append(
            [
                host,
                str(node.get("max_workers", "")),
                str(len(node.get("tasks", []))),
                "yes" if node.get("connected") else "no",
                "yes" if node.get("blacklisted") else "no",
                str(node.get("job_ok", 0)),
                str(node.get("data_error", 0)),
                str(node.get("error", 0)),
                str(node.get("diskfree", 0)),
                str(node.get("diskused", 0)),
            ]
        )
    lines += _table(rows) if len(rows) > 1 else ["  (none)"]

    lines += ["", "Blacklisted for tasks: %s" % (", ".join(state["blacklist"]) or "none")]
    lines += ["Blacklisted for DDFS GC: %s" % (", ".join(state["gc_blacklist"]) or "none")]

    lines += ["", "Running tasks:"]
    per_host: dict[str, dict[str, int]] = {}
    for task in state["running_tasks"]:
        jobs = per_host.setdefault(task["host"], {})
        jobs[task["job"]] = jobs.get(task["job"], 0) + 1
    rows = [
        [host, job, "%d task%s" % (n, "" if n == 1 else "s")]
        for host, jobs in sorted(per_host.items())
        for job, n in sorted(jobs.items())
    ]
    lines += _table(rows) or ["  none"]

    shown, total = len(state["jobs"]), state["jobs_total"]
    lines += ["", "Jobs (%d of %d, newest first):" % (shown, total)]
    if not state["jobs"]:
        lines.append("  none")
    for job in state["jobs"]:
        lines.append(
            "  %s  %s  started %s  owner %s  %d result(s)"
            % (job["name"], job["status"], _when(job["started"]), job["owner"], job["results"])
        )
        rows = [["stage", *STAGE_COLUMNS]]
        rows += [
            [str(stage.get(c, "")) for c in ("stage", *STAGE_COLUMNS)] for stage in job["stages"]
        ]
        if len(rows) > 1:
            lines += _table(rows, indent="      ")
        if job["running_on"]:
            lines.append("      running on: %s" % ", ".join(job["running_on"]))
    return "\n".join(lines)
