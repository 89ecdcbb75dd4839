"""The sort section of ``docs/benchmarks.md`` (``bench_report.build_report`` calls it).

Records: ``sort/<records label>/<system>.jsonl`` (+ ``.verify.json``) from
``../shared/bench/run_peers.sh`` (peers) and ``benchmarks/run.py`` (ours),
``inputs/<records label>.json``, and ``disco/phases/sort-<run>.json``.
"""

from __future__ import annotations

import os
from typing import Any

import bench_report as br

REFERENCE = "python-sort"
HOW = {
    br.OURS: "this project: `benchmarks/sort_disco.py` runs `examples/pipeline_sort.py` on "
    "the embedded default master (started inside the timed process): keys sampled for 3 "
    "range boundaries, 4 line-aligned `raw://path:start:end` ranges; stage `partition` "
    "(`split`) sorts each 8 MiB block of lines by key and writes each key range's lines "
    "as plain lines to its label (the example's output stream, not the pickled and "
    "deflated record format), stage `sort` (`group_label`, `combine=True, sort=True`) "
    "reads them with the example's input stream as `(key, line)` records, which the "
    "framework sorts by key in the task (in memory when they fit `sort_buffer_size`), "
    "and writes the lines back; the client concatenates the 4 outputs",
    REFERENCE: "`readlines()` + `list.sort()` + `writelines()`, one process; the reference output",
    "gnu-sort-p2": "`LC_ALL=C sort --parallel=2 -S 25%`",
    "pyspark-sortByKey": "PySpark `textFile.map(line -> (key, rest)).sortByKey()`, "
    "`saveAsTextFile`, part files concatenated; `local[2]`, JVM start included",
    "dask-dataframe-sort": "Dask dataframe `sort_values`, 2 worker processes",
}


def load_sort(results: str, run: dict[str, Any]) -> dict[str, Any] | None:
    """The sort records of the run, or ``None`` when it had no sort benchmark."""
    label = run.get("sort_label")
    if not label:
        return None
    return {
        "label": label,
        "input": br.load_json(os.path.join(results, "inputs", label + ".json"), {}) or {},
        "systems": br.load_systems(os.path.join(results, "sort", label)),
        "phases": br.load_phases(os.path.join(results, br.OURS, "phases"), "sort-"),
        "ran": set(run.get("systems_ran", [])) | set(run.get("sort_peers", [])),
    }


#: issue 13: our sort at least this fraction of GNU sort's speed, same run
SORT_TARGET = 0.5
GNU_SORT = "gnu-sort-p2"


def sort_target(d: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The sort row of the targets table, and why it is not met (when it is not)."""
    if d is None:
        return [], []
    systems = d["systems"]
    om = systems.get(br.OURS, {}).get("median")
    gm = systems.get(GNU_SORT, {}).get("median")
    r = br.ratio(gm, om)
    ok = None if r is None else r >= SORT_TARGET
    fig = "disco %s s, %s %s s" % (br.fmt(om), GNU_SORT, br.fmt(gm))
    if r:
        fig += " (%.2f× its speed)" % r
    rows = [
        "| Sort of %s: disco >= %.1f× `LC_ALL=C sort --parallel=2`, same run | %s | %s |"
        % (d["input"].get("spec", d["label"]), SORT_TARGET, fig, br._status(ok))
    ]
    why = []
    if ok is False:
        ph = d["phases"] or {}
        why.append(
            "Sort: %.2f× (%s s against %s s); of its median run, the master start took %s s "
            "and the job from sampling the keys to the last byte of the output %s s; "
            "where the job's time goes is profiled in the notes below."
            % (r, br.fmt(om), br.fmt(gm), br.fmt(ph.get("master_s")), br.fmt(ph.get("sort_s")))
        )
    elif om is None and systems.get(br.OURS):
        why.append("Sort: our job did not complete; see *Failures* below.")
    return rows, why


def sort_section(d: dict[str, Any] | None, out: list[str]) -> None:
    """Append the ``## Sort`` section (nothing when ``d`` is ``None``)."""
    if d is None:
        return
    inp, systems = d["input"], d["systems"]
    nbytes = inp.get("bytes")
    out.append("## Sort — %s (`%s`)" % (br.human_bytes(nbytes), inp.get("spec", d["label"])))
    out.append("")
    ours = systems.get(br.OURS, {})
    om = ours.get("median")
    out.append(
        "| system | runs | median s | min–max s | MB/s | CPU s | peak memory, whole tree MiB "
        "(PSS) | output | disco speed vs it |"
    )
    out.append("|" + "---|" * 9)
    order = [br.OURS, REFERENCE] + [s for s in systems if s not in (br.OURS, REFERENCE)]
    for name in order:
        s = systems.get(name)
        if s is None:
            continue
        med = s.get("median")
        speed = br.ratio(med, om) if name != br.OURS else None
        label = "**`%s`**" % name if name == br.OURS else "`%s`" % name
        if name not in d["ran"]:
            label += " †"
        out.append(
            "| %s | %d/%d | %s | %s | %s | %s | %s | %s | %s |"
            % (
                label,
                s["n_ok"],
                s["n"],
                "**%s**" % br.fmt(med) if med else "**failed**",
                "%s–%s" % (br.fmt(s.get("min")), br.fmt(s.get("max"))) if med else "–",
                br.fmt(nbytes / 1e6 / med, 1) if med and nbytes else "–",
                br.fmt(s.get("cpu")),
                br.mib(s.get("pss_kb")),
                br.verify_text(s.get("verify") or {}),
                "%.2f×" % speed if speed else "–",
            )
        )
    out.append("")
    out.append(
        "*disco speed vs it* = that system's median / disco's median (below 1: that system "
        "is faster). `= ref` = byte-identical to the `python-sort` output. † = not run in "
        "this run (figures from an earlier run)."
    )
    for name in order:
        for failure in (systems.get(name) or {}).get("failed", []):
            out.append("- `%s` %s." % (name, failure))
    ph = d["phases"]
    if ph:
        out.append("")
        out.append(
            "Where disco's time goes (median, seconds, inside `sort_disco.py`): starting the "
            "embedded master %s, the sort from sampling the keys to the last byte of the "
            "output %s; the rest is interpreter start, imports and exit."
            % (br.fmt(ph.get("master_s")), br.fmt(ph.get("sort_s")))
        )
    out.append("")
    for name in order:
        if name in systems and name in HOW:
            out.append("- `%s`: %s." % (name, HOW[name]))
    out.append("")
