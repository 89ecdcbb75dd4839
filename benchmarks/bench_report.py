#!/usr/bin/env python3
"""Write ``docs/benchmarks.md`` from the records of a benchmark run.

    python benchmarks/bench_report.py [--results bench-results] [--out docs/benchmarks.md]

``benchmarks/run.py`` calls this at the end of a run; run alone it rebuilds the page from
the records already there.  Layout of the results directory (``run.py`` and
``../shared/bench/run_peers.sh`` write it; one JSON object per measured run comes from
``../shared/bench/measure.py``):

    run.json                          settings and facts of the run (run.py)
    env.json                          machine and peer versions (run_peers.sh)
    inputs/<label>.json               corpus size, md5, how it was made
    wordcount/<label>/<system>.jsonl  word count runs; <system>.verify.json output check
    tiny/<tiny label>/<peer>.jsonl    peers' tiny job (word count of a 1 KiB file)
    disco/tiny.jsonl                  our tiny job, whole process
    disco/latency.json                our tiny job on a running master (tiny_disco.py)
    disco/many_tasks.json             many tiny tasks on a running master (many_tasks.py)
    disco/phases/<name>.json          phase seconds written by our scripts
    sort/<records label>/<system>.jsonl  sort runs (sort_report.py writes that section)
    disco/failures.json               log tails of our failed steps

Standard library only.  ``build_report`` is pure (data in, markdown out).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
from typing import Any

OURS = "disco"
CANONICAL = "disco-canonical"  # the word count a user writes first (issue 13)
CANONICAL_TARGET = 0.5  # x the hand-written multiprocessing program, same run
README_JOB = "disco-readme"  # the README's "Your first job" over the corpus (issue 13)
README_TARGET = 0.25  # x the hand-written multiprocessing program, same run
README_MEMORY_MIB = 1024  # peak summed PSS of the whole process tree
DASK_DEFAULT = "dask-bag-processes"
HANDWRITTEN = "python-multiprocessing-2p"
REFERENCE = "python-counter"
TINY_WHOLE_TARGET_S = 0.3  # issue 13 (was 0.5)
TINY_RUNNING_TARGET_S = 0.05  # issue 13 (was 0.1)
RETRY_TARGET_S = 1.0  # issue 13: a killed worker's task restarts within 1 s

HOW = {
    OURS: "this project: `benchmarks/wordcount_disco.py` on the embedded default master "
    "(started inside the timed process): line-aligned `raw://path:start:end` ranges, a "
    "`map_reader` yielding big blocks, `Counter` per block, sum combiner, 2 reduce partitions, "
    "`result_iterator`, sort, write",
    CANONICAL: "this project: `benchmarks/wordcount_canonical.py`, the word count a Disco "
    "user writes first, nothing tuned: 4 `file://` inputs (the corpus cut with `split -n "
    "l/4`), default readers, `map` yields `(word, 1)` per word, a sum `combiner`, `reduce` "
    "with `kvgroup(sorted(iter))`, `partitions=2`, embedded default master",
    README_JOB: "this project: `benchmarks/readme_job.py` runs the first job of README.md as "
    "it stands (its functions and `Job.run` arguments are read from the README) over the "
    "corpus as one `file://` input, embedded default master",
    REFERENCE: "`Counter.update(line.split())` line by line, one process; the reference output",
    HANDWRITTEN: "hand-written `multiprocessing.Pool(2)` over 8 line-aligned byte ranges, a "
    "`Counter` per range, merged in the parent",
    DASK_DEFAULT: "Dask bag `read_text(blocksize=32MiB).str.split().flatten().frequencies()`, "
    "processes scheduler, 2 workers, default settings",
    "dask-bag-processes-c1": "the same Dask bag with `chunksize=1` (tasks handed out one at a "
    "time instead of dask's default batches of 6)",
    "dask-bag-distributed": "the same bag on a 2-worker `LocalCluster` started in the script",
    "pyspark-local2": "PySpark RDD `flatMap/map/reduceByKey/collect`, `local[2]`, JVM start "
    "included",
    "mrjob-local": "mrjob local runner (Hadoop Streaming simulation), 2 cores",
    "gnu-awk": "`awk` hash count, then `sort`",
    "gnu-tr-sort-uniq": "`tr -s ' \\n' '\\n' | sort --parallel=2 | uniq -c`, `LC_ALL=C`",
}


# -- loading --------------------------------------------------------------------------------
def load_jsonl(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def load_json(path: str, default: Any = None) -> Any:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median wall time and peaks over the successful runs of one system."""
    ok = [r for r in runs if r.get("rc") == 0 and not r.get("timed_out")]
    s: dict[str, Any] = {"n": len(runs), "n_ok": len(ok)}
    if ok:
        walls = [r["wall_s"] for r in ok]
        s["median"] = statistics.median(walls)
        s["min"], s["max"] = min(walls), max(walls)
        s["cpu"] = statistics.median(
            max((r.get("user_s") or 0) + (r.get("sys_s") or 0), r.get("tree_cpu_s") or 0)
            for r in ok
        )
    s["pss_kb"] = max((r.get("tree_pss_kb") or 0 for r in runs), default=0)
    s["rss_kb"] = max((r.get("maxrss_kb") or 0 for r in runs), default=0)
    s["failed"] = [
        "run %s: %s"
        % (r.get("run"), "timed out" if r.get("timed_out") else "exit %s" % r.get("rc"))
        for r in runs
        if r not in ok
    ]
    return s


def load_systems(directory: str) -> dict[str, dict[str, Any]]:
    """``<system>.jsonl`` (+ ``.verify.json``) of one workload directory, summarized."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        name = os.path.basename(path)[: -len(".jsonl")]
        runs = load_jsonl(path)
        if not runs:
            continue
        s = summarize(runs)
        s["verify"] = load_json(path[: -len(".jsonl")] + ".verify.json", {})
        s["mtime"] = os.path.getmtime(path)
        out[name] = s
    return out


def load_phases(directory: str, prefix: str) -> dict[str, float]:
    """Median of each phase over ``<prefix>*.json`` files."""
    values: dict[str, list[float]] = {}
    for path in glob.glob(os.path.join(directory, prefix + "*.json")):
        for k, v in (load_json(path, {}) or {}).items():
            if isinstance(v, int | float):
                values.setdefault(k, []).append(float(v))
    return {k: statistics.median(v) for k, v in values.items()}


def retry_rows(d: dict[str, Any], rows: list[str], why: list[str]) -> None:
    """The retries target: kill -> start of the next attempt (``retry_gap.py``)."""
    rg = d.get("retries")
    if rg is None:
        if any("retries" in k for k in d["failures"]):
            why.append("Retries: the benchmark failed; see *Failures* below.")
        return
    worst, med = rg.get("max_s"), rg.get("median_s")
    ok = None if worst is None else worst < RETRY_TARGET_S and rg["restarted"] == rg["kills"]
    rows.append(
        "| A killed worker's task restarts within %g s (kill to the next attempt's start, "
        "%d kills) | median %s s, slowest %s s | %s |"
        % (RETRY_TARGET_S, rg.get("kills", 0), fmt(med, 3), fmt(worst, 3), _status(ok))
    )
    delays = rg.get("retry_delays_s") or []
    if ok is False:
        why.append(
            "Retries: slowest restart %s s of which the master's chosen retry delay was at "
            "most %s s; %d of %d killed tasks restarted."
            % (fmt(worst, 3), fmt(max(delays) if delays else None, 3), rg["restarted"], rg["kills"])
        )


def load_all(results: str, notes_path: str | None = None) -> dict[str, Any]:
    """Everything ``build_report`` needs, read from a results directory."""
    run = load_json(os.path.join(results, "run.json"), {}) or {}
    label = run.get("label", "")
    tiny_label = run.get("tiny_label", "corpus-1K")
    notes = ""
    if notes_path and os.path.exists(notes_path):
        with open(notes_path) as f:
            notes = f.read()
    ours = os.path.join(results, "disco")
    import dask_report  # imports this module: loaded on use
    import ddfs_report
    import many_tasks_report
    import sort_report

    return {
        "run": run,
        "env": load_json(os.path.join(results, "env.json"), {}) or {},
        "input": load_json(os.path.join(results, "inputs", label + ".json"), {}) or {},
        "wordcount": load_systems(os.path.join(results, "wordcount", label)),
        "peer_tiny": load_systems(os.path.join(results, "tiny", tiny_label)),
        "tiny_whole": summarize(load_jsonl(os.path.join(ours, "tiny.jsonl")))
        if os.path.exists(os.path.join(ours, "tiny.jsonl"))
        else None,
        "latency": load_json(os.path.join(ours, "latency.json")),
        "retries": load_json(os.path.join(ours, "retries.json")),
        "wc_phases": load_phases(os.path.join(ours, "phases"), "wordcount-"),
        "canonical_phases": load_phases(os.path.join(ours, "phases"), "canonical-"),
        "readme_phases": load_phases(os.path.join(ours, "phases"), "readme-"),
        "tiny_phases": load_phases(os.path.join(ours, "phases"), "tiny-"),
        "failures": load_json(os.path.join(ours, "failures.json"), {}) or {},
        "notes": notes,
        "sort": sort_report.load_sort(results, run),
        "ddfs": ddfs_report.load_ddfs(results) if run.get("ddfs") else None,
        "dask": dask_report.load_dask(results) if run.get("dask") else None,
        "many_tasks": many_tasks_report.load_many_tasks(results),
    }


# -- formatting -----------------------------------------------------------------------------
def fmt(x: float | None, nd: int = 2) -> str:
    if x is None:
        return "–"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return "%.*f" % (nd, x)


def mib(kb: int | None) -> str:
    return fmt(kb / 1024.0, 0) if kb else "–"


def human_bytes(n: int | None) -> str:
    if not n:
        return "?"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            v = n / size
            return "%d %s" % (v, unit) if v == int(v) else "%.2f %s" % (v, unit)
    return "%d B" % n


def verify_text(v: dict[str, Any]) -> str:
    st = v.get("status", "")
    return {
        "identical": "= ref",
        "reference-ok": "ref ✓",
        "reference-bad": "**ref ✗**",
        "missing": "none",
        "DIFFERS": "**DIFFERS**",
        "unchecked": "unchecked",
    }.get(st, st or "?")


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


# -- the page -------------------------------------------------------------------------------
def targets(d: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Rows of the targets table and the automatic explanations of missed targets."""
    rows: list[str] = []
    why: list[str] = []
    wc = d["wordcount"]
    ours = wc.get(OURS, {})
    om = ours.get("median")
    dask = wc.get(DASK_DEFAULT, {}).get("median")
    ok = None if om is None or dask is None else om <= dask
    fig = "disco %s s, %s %s s" % (fmt(om), DASK_DEFAULT, fmt(dask))
    if om and dask:
        fig += " (disco %.2f× its speed)" % (dask / om)
    rows.append(
        "| Word count at least as fast as Dask bag (default settings), same run "
        "| %s | %s |" % (fig, _status(ok))
    )
    if om is None:
        why.append(
            "Word count: our job did not complete (%s); see *Failures* below."
            % ("; ".join(ours.get("failed", [])) or "not run")
        )
    elif ok is False:
        ph = d["wc_phases"]
        why.append(
            "Word count: %s s against %s s. CPU %s s against Dask's %s s; of our median "
            "run, the job itself (submit to results) took %s s, master start %s s, reading "
            "and sorting the results %s s."
            % (
                fmt(om),
                fmt(dask),
                fmt(ours.get("cpu")),
                fmt(wc.get(DASK_DEFAULT, {}).get("cpu")),
                fmt(ph.get("job_s")),
                fmt(ph.get("master_s")),
                fmt(ph.get("read_sort_s")),
            )
        )
    tw = d["tiny_whole"] or {}
    tm = tw.get("median")
    ok = None if tm is None else tm < TINY_WHOLE_TARGET_S
    rows.append(
        "| Tiny job as a whole process on the embedded default < %g s | median %s s "
        "| %s |" % (TINY_WHOLE_TARGET_S, fmt(tm, 3), _status(ok))
    )
    if ok is False:
        ph = d["tiny_phases"]
        why.append(
            "Tiny job, whole process: %s s. Inside the script, starting the embedded master "
            "took %s s and the job (Job.run to last record) %s s; the rest (%s s) is the "
            "interpreter start, imports and shutdown."
            % (
                fmt(tm, 3),
                fmt(ph.get("master_s"), 3),
                fmt(ph.get("total_s"), 3),
                fmt(tm - ph.get("master_s", 0) - ph.get("total_s", 0), 3) if ph else "–",
            )
        )
    elif tm is None and d["tiny_whole"]:
        why.append(
            "Tiny job, whole process: failed (%s); see *Failures* below."
            % "; ".join(tw.get("failed", []))
        )
    lat = d["latency"] or {}
    lm = lat.get("median_s")
    ok = None if lm is None else lm < TINY_RUNNING_TARGET_S
    rows.append(
        "| Tiny job on a running master (Job.run to last record) < %g s | median %s s "
        "| %s |" % (TINY_RUNNING_TARGET_S, fmt(lm, 3), _status(ok))
    )
    if ok is False:
        why.append(
            "Tiny job on a running master: %s s; median submit %s s, wait for results %s s, "
            "read %s s. The wait covers the three stages (map, map_shuffle, reduce) with a "
            "new worker process per task."
            % (
                fmt(lm, 3),
                fmt(lat.get("median_submit_s"), 3),
                fmt(lat.get("median_wait_s"), 3),
                fmt(lat.get("median_read_s"), 3),
            )
        )
    elif lm is None and any("running master" in k for k in d["failures"]):
        why.append("Tiny job on a running master: failed; see *Failures* below.")
    retry_rows(d, rows, why)
    hw = wc.get(HANDWRITTEN, {}).get("median")
    fig = "disco %s s, %s %s s" % (fmt(om), HANDWRITTEN, fmt(hw))
    if om and hw:
        fig += " (disco %.2f× its speed)" % (hw / om)
    rows.append(
        "| Against hand-written multiprocessing (no target; where we stand) | %s | – |" % fig
    )
    cm = wc.get(CANONICAL, {}).get("median")
    cr = ratio(hw, cm)
    ok = None if cr is None else cr >= CANONICAL_TARGET
    fig = "%s %s s, %s %s s" % (CANONICAL, fmt(cm), HANDWRITTEN, fmt(hw))
    if cr:
        fig += " (%.2f× its speed)" % cr
    rows.append(
        "| Canonical word count >= %.1f× hand-written multiprocessing, same run | %s | %s |"
        % (CANONICAL_TARGET, fig, _status(ok))
    )
    if ok is False:
        ph = d.get("canonical_phases") or {}
        why.append(
            "Canonical word count: %.2f× (%s s against %s s); of its median run the job "
            "(submit to results) took %s s, master start %s s, reading and writing the "
            "results %s s. Where the job's time goes is profiled in the notes below."
            % (
                cr,
                fmt(cm),
                fmt(hw),
                fmt(ph.get("job_s")),
                fmt(ph.get("master_s")),
                fmt(ph.get("read_write_s")),
            )
        )
    readme_target(d, hw, rows, why)
    import many_tasks_report

    more_rows, more_why = many_tasks_report.target_rows(d.get("many_tasks"))
    rows.extend(more_rows)
    why.extend(more_why)
    return rows, why


def readme_target(d: dict[str, Any], hw: Any, rows: list[str], why: list[str]) -> None:
    """The README job's row: speed against the hand-written program and peak memory."""
    s = d["wordcount"].get(README_JOB)
    if s is None:
        return
    rm, pss = s.get("median"), s.get("pss_kb") or 0
    r = ratio(hw, rm)
    fast = None if r is None else r >= README_TARGET
    small = pss / 1024 < README_MEMORY_MIB if pss else None
    ok = None if fast is None or small is None else fast and small
    fig = "%s %s s, %s %s s" % (README_JOB, fmt(rm), HANDWRITTEN, fmt(hw))
    if r:
        fig += " (%.2f× its speed)" % r
    fig += ", peak %s MiB" % mib(pss)
    rows.append(
        "| README's first job >= %.2f× hand-written multiprocessing and < %d MiB peak, "
        "same run | %s | %s |" % (README_TARGET, README_MEMORY_MIB, fig, _status(ok))
    )
    if ok is False:
        ph = d.get("readme_phases") or {}
        why.append(
            "README's first job: %s× (%s s against %s s), peak %s MiB (whole tree PSS); "
            "of its median run the job took %s s, master start %s s, reading and writing "
            "the results %s s."
            % (
                "%.2f" % r if r else "?",
                fmt(rm),
                fmt(hw),
                mib(pss),
                fmt(ph.get("job_s")),
                fmt(ph.get("master_s")),
                fmt(ph.get("read_write_s")),
            )
        )


def wordcount_table(d: dict[str, Any], out: list[str]) -> None:
    wc = d["wordcount"]
    run = d["run"]
    ran = set(run.get("systems_ran", []))
    nbytes = d["input"].get("bytes") or run.get("input_bytes")
    ours = wc.get(OURS, {})
    om, opss = ours.get("median"), ours.get("pss_kb")
    out.append(
        "| system | runs | median s | min–max s | MB/s | CPU s | peak memory, whole tree "
        "MiB (PSS) | largest process MiB (RSS) | output | disco speed vs it | disco "
        "memory vs it |"
    )
    out.append("|" + "---|" * 11)
    order = [OURS, REFERENCE] + [s for s in wc if s not in (OURS, REFERENCE)]
    stale = []
    for name in order:
        s = wc.get(name)
        if s is None:
            continue
        med = s.get("median")
        mbps = nbytes / 1e6 / med if med and nbytes else None
        speed = ratio(med, om) if name != OURS else None
        mem = ratio(opss, s.get("pss_kb")) if name != OURS and om else None
        label = "**`%s`**" % name if name == OURS else "`%s`" % name
        if ran and name not in ran:
            label += " †"
            stale.append(name)
        out.append(
            "| %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s |"
            % (
                label,
                s["n_ok"],
                s["n"],
                "**%s**" % fmt(med) if med else "**failed**",
                "%s–%s" % (fmt(s.get("min")), fmt(s.get("max"))) if med else "–",
                fmt(mbps, 1),
                fmt(s.get("cpu")),
                mib(s.get("pss_kb")),
                mib(s.get("rss_kb")),
                verify_text(s.get("verify") or {}),
                "%.2f×" % speed if speed else "–",
                "%.2f×" % mem if mem else "–",
            )
        )
    out.append("")
    out.append(
        "*disco speed vs it* = that system's median / disco's median (above 1: disco is "
        "faster). *disco memory vs it* = disco's peak PSS / that system's (below 1: "
        "disco uses less). Output: `ref ✓` = the reference passed its own check (sum of "
        "counts = `wc -w`, sorted), `= ref` = byte-identical to the reference output."
    )
    if stale:
        out.append("")
        out.append(
            "† not run in this run (`--skip-peers` or not selected): figures from an "
            "earlier run on the same corpus, so they are not same-run comparisons."
        )
    for name in order:
        s = wc.get(name) or {}
        for f in s.get("failed", []):
            out.append("- `%s` %s." % (name, f))
        v = s.get("verify") or {}
        if v.get("status") not in (None, "identical", "reference-ok"):
            out.append("- `%s` output: %s — %s." % (name, v.get("status"), v.get("detail", "")))
    ph = d["wc_phases"]
    if ph:
        out.append("")
        out.append(
            "Where disco's time goes (median over its runs, seconds, measured inside "
            "`wordcount_disco.py`): starting the embedded master %s, cutting the input "
            "into %s ranges %s, the job from `Job.run` to its results %s, reading the "
            "results with `result_iterator` and sorting %s, writing the output %s; the "
            "rest of the wall time is interpreter start, imports and exit."
            % (
                fmt(ph.get("master_s")),
                fmt(ph.get("inputs"), 0),
                fmt(ph.get("split_s")),
                fmt(ph.get("job_s")),
                fmt(ph.get("read_sort_s")),
                fmt(ph.get("write_s")),
            )
        )
    out.append("")


def canonical_section(d: dict[str, Any], out: list[str]) -> None:
    """The canonical word count against the hand-written program, with the run's date."""
    wc = d["wordcount"]
    canon = wc.get(CANONICAL)
    if canon is None:
        return
    cm, hw = canon.get("median"), wc.get(HANDWRITTEN, {}).get("median")
    r = ratio(hw, cm)
    out.append("## Canonical word count")
    out.append("")
    out.append(
        "The word count a Disco user writes first (`benchmarks/wordcount_canonical.py`, "
        "nothing tuned: `map` yields `(word, 1)`, a sum `combiner`, `reduce` with "
        "`kvgroup(sorted(iter))`, default readers, `partitions=2`, 4 `file://` inputs, "
        "embedded default master), run %s UTC on the corpus above: median %s s against "
        "`%s`'s %s s in the same run, **%s** (target >= %.1f×: %s)."
        % (
            d["run"].get("started", "?"),
            fmt(cm),
            HANDWRITTEN,
            fmt(hw),
            "%.2f×" % r if r else "–",
            CANONICAL_TARGET,
            "met" if r and r >= CANONICAL_TARGET else "not met",
        )
    )
    out.append("")


def readme_section(d: dict[str, Any], out: list[str]) -> None:
    """The README's first job against the hand-written program: time and memory."""
    wc = d["wordcount"]
    s = wc.get(README_JOB)
    if s is None:
        return
    rm, pss = s.get("median"), s.get("pss_kb")
    hws = wc.get(HANDWRITTEN, {})
    r = ratio(hws.get("median"), rm)
    met = bool(r and r >= README_TARGET and pss and pss / 1024 < README_MEMORY_MIB)
    out.append("## README's first job")
    out.append("")
    out.append(
        "The first job of README.md as it stands (`benchmarks/readme_job.py` reads its "
        "functions and `Job.run` arguments from the README), over the corpus above as one "
        "`file://` input, run %s UTC: median %s s (CPU %s s), peak %s MiB, against `%s`'s "
        "%s s (CPU %s s), %s MiB in the same run: **%s** (target >= %.2f× and < %d MiB: %s)."
        % (
            d["run"].get("started", "?"),
            fmt(rm),
            fmt(s.get("cpu")),
            mib(pss),
            HANDWRITTEN,
            fmt(hws.get("median")),
            fmt(hws.get("cpu")),
            mib(hws.get("pss_kb")),
            "%.2f×" % r if r else "–",
            README_TARGET,
            README_MEMORY_MIB,
            "met" if met else "not met",
        )
    )
    out.append("")


def tiny_section(d: dict[str, Any], out: list[str]) -> None:
    out.append("| measurement | runs | median s | min–max s | target | status |")
    out.append("|---|---|---|---|---|---|")
    tw = d["tiny_whole"]
    if tw:
        med = tw.get("median")
        out.append(
            "| disco, whole process: `python benchmarks/tiny_disco.py` (embedded default "
            "master started inside) | %d/%d | **%s** | %s | < %g s | %s |"
            % (
                tw["n_ok"],
                tw["n"],
                fmt(med, 3) if med else "failed",
                "%s–%s" % (fmt(tw.get("min"), 3), fmt(tw.get("max"), 3)) if med else "–",
                TINY_WHOLE_TARGET_S,
                _status(None if med is None else med < TINY_WHOLE_TARGET_S),
            )
        )
    lat = d["latency"]
    if lat:
        med = lat.get("median_s")
        out.append(
            "| disco, running master (%s): `Job.run` to last result record | %s "
            "(+%s warm-up) | **%s** | %s–%s | < %g s | %s |"
            % (
                lat.get("master", "?"),
                lat.get("runs"),
                lat.get("warmup"),
                fmt(med, 3),
                fmt(lat.get("min_s"), 3),
                fmt(lat.get("max_s"), 3),
                TINY_RUNNING_TARGET_S,
                _status(None if med is None else med < TINY_RUNNING_TARGET_S),
            )
        )
        out.append("")
        out.append(
            "Running master, median per phase: `Job.run` (build and submit the job "
            "pack) %s s, `wait` until the results are ready %s s, `result_iterator` to "
            "the last record %s s; 90th percentile of the total %s s."
            % (
                fmt(lat.get("median_submit_s"), 3),
                fmt(lat.get("median_wait_s"), 3),
                fmt(lat.get("median_read_s"), 3),
                fmt(lat.get("p90_s"), 3),
            )
        )
    ph = d["tiny_phases"]
    if ph:
        out.append("")
        out.append(
            "Whole process, median inside the script: master start %s s, job %s s "
            "(submit %s, wait %s, read %s)."
            % (
                fmt(ph.get("master_s"), 3),
                fmt(ph.get("total_s"), 3),
                fmt(ph.get("submit_s"), 3),
                fmt(ph.get("wait_s"), 3),
                fmt(ph.get("read_s"), 3),
            )
        )
    pt = d["peer_tiny"]
    if pt:
        out.append("")
        out.append(
            "For scale, the peers' tiny job (word count of a 1 KiB file, whole process, "
            "same run unless marked †):"
        )
        out.append("")
        out.append("| peer | runs | median s | min–max s |")
        out.append("|---|---|---|---|")
        ran = set(d["run"].get("systems_ran", []))
        for name, s in pt.items():
            med = s.get("median")
            mark = " †" if ran and name not in ran else ""
            out.append(
                "| `%s`%s | %d/%d | %s | %s |"
                % (
                    name,
                    mark,
                    s["n_ok"],
                    s["n"],
                    fmt(med, 3) if med else "failed",
                    "%s–%s" % (fmt(s.get("min"), 3), fmt(s.get("max"), 3)) if med else "–",
                )
            )
    out.append("")


def build_report(d: dict[str, Any]) -> str:
    """The markdown page."""
    run, env, inp = d["run"], d["env"], d["input"]
    out = ["# Benchmarks", ""]
    out.append(
        "Generated by `%s` (`make bench` runs it with no options); "
        "`benchmarks/bench_report.py` writes this "
        "page from `bench-results/`, so do not edit it by hand: hand-written notes "
        "belong in `benchmarks/NOTES.md`, which is copied in below."
        % (run.get("command") or ".venv/bin/python benchmarks/run.py")
    )
    out.append("")
    out.append(
        "- Run: %s UTC, %s s in all; project commit `%s`%s."
        % (
            run.get("started", "?"),
            run.get("seconds", "?"),
            run.get("commit", "?"),
            " (with uncommitted changes)" if run.get("dirty") else "",
        )
    )
    out.append(
        "- Settings: corpus %s (`%s`, %s bytes, md5 `%s`), %s run(s) per system, "
        "peers: %s."
        % (
            human_bytes(inp.get("bytes") or run.get("input_bytes")),
            inp.get("spec", run.get("label", "?")),
            "{:,}".format(inp["bytes"]) if inp.get("bytes") else "?",
            inp.get("md5", "?"),
            run.get("runs", "?"),
            ", ".join("`%s`" % p for p in run.get("peers", [])) or "none",
        )
    )
    if run.get("quick"):
        out.append("- **`--quick` smoke run**: small corpus, figures are not the benchmark.")
    cores = env.get("cores") or run.get("cores")
    out.append(
        "- Machine: %s cores (%s), %s GiB RAM; Python %s; %s."
        % (
            cores,
            env.get("cpu", run.get("cpu", "?")),
            env.get("mem_gib", run.get("mem_gib", "?")),
            run.get("python", env.get("python", "?")),
            ", ".join(
                "%s %s" % (k, v)
                for k, v in (env.get("packages") or {}).items()
                if v and k in ("dask", "distributed", "pyspark", "numpy")
            )
            or "peers: ?",
        )
    )
    out.append("")
    out.append("## Targets")
    out.append("")
    rows, why = targets(d)
    import ddfs_report
    import sort_report

    for more_rows, more_why in (
        sort_report.sort_target(d.get("sort")),
        ddfs_report.ddfs_targets(d.get("ddfs")),
    ):
        rows.extend(more_rows)
        why.extend(more_why)
    out.append("| target | measured | status |")
    out.append("|---|---|---|")
    out.extend(rows)
    out.append("")
    if why:
        out.append("Where a target is not met, what the run measured:")
        out.append("")
        out.extend("- " + w for w in why)
        out.append("")
    out.append("## Word count — %s" % human_bytes(inp.get("bytes") or run.get("input_bytes")))
    out.append("")
    wordcount_table(d, out)
    canonical_section(d, out)
    readme_section(d, out)
    out.append("## Tiny job latency")
    out.append("")
    out.append(
        "Two `raw://` inputs, a map and a reduce, 3 result records (`benchmarks/tiny_disco.py`); the "
        "counts are checked on every run."
    )
    out.append("")
    tiny_section(d, out)
    sort_report.sort_section(d.get("sort"), out)
    ddfs_report.ddfs_section(d.get("ddfs"), out)
    import dask_report

    dask_report.dask_section(d.get("dask"), out)
    import many_tasks_report

    many_tasks_report.many_tasks_section(d.get("many_tasks"), out)
    if d["failures"]:
        out.append("## Failures")
        out.append("")
        for step, tail in d["failures"].items():
            out.append("`%s` failed; end of its log:" % step)
            out.append("")
            out.append("```")
            out.append(tail.rstrip())
            out.append("```")
            out.append("")
    out.append("## How each system does the job")
    out.append("")
    names = [OURS] + [n for n in d["wordcount"] if n != OURS]
    for name in names:
        if name in HOW:
            out.append("- `%s`: %s." % (name, HOW[name]))
    out.append("")
    out.append("## How it is measured")
    out.append("")
    out.append(
        "Every word count, ours included, is one process started by "
        "`../shared/bench/measure.py` (GNU `time -v` plus sampling of the whole process "
        "tree from /proc), from a warm page cache; the wall time covers interpreter, JVM or "
        "master start-up, reading, counting, sorting and writing the output. Peers run "
        "through `../shared/bench/run_peers.sh`, one peer at a time, in the same run as ours, "
        "PySpark last. Peak memory is the largest summed PSS of the process tree (workers and "
        "JVM included). CPU s = user + sys of the tree. Our output is compared byte for byte "
        "with the single-process Python reference. The machine is shared and noisy (about "
        "±20 % between runs of one command): compare ratios within one run."
    )
    out.append("")
    if d["notes"].strip():
        out.append(d["notes"].rstrip())
        out.append("")
    out.append("## Re-running")
    out.append("")
    out.append(
        "```sh\nmake bench                                   # = .venv/bin/python "
        "benchmarks/run.py\n.venv/bin/python benchmarks/run.py --quick     # 16 MiB "
        "smoke test (100K sort records)\n.venv/bin/python benchmarks/run.py --skip-peers --runs 1   # only "
        "ours, peers' figures kept from before\n.venv/bin/python benchmarks/run.py "
        "--peers dask-bag-processes,python-multiprocessing-2p\n"
        ".venv/bin/python benchmarks/bench_report.py   # rebuild this page\n```"
    )
    out.append("")
    out.append(
        "Peers are installed into `.peers-venv` (from `../shared/bench/requirements-"
        "peers.txt` and its constraints) on first use; corpora go to `bench-data/`, "
        "outputs and logs to `bench-work/`, records to `bench-results/` (all git-ignored)."
    )
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=os.path.join(root, "bench-results"))
    ap.add_argument("--out", default=os.path.join(root, "docs", "benchmarks.md"))
    ap.add_argument("--notes", default=os.path.join(here, "NOTES.md"))
    args = ap.parse_args(argv)
    text = build_report(load_all(args.results, args.notes))
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
