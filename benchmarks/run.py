#!/usr/bin/env python3
"""The one benchmark command (``make bench``): this project against its peers, same run.

    .venv/bin/python benchmarks/run.py [--size 256M] [--runs N] [--peers a,b,...]
                                       [--skip-peers] [--quick]

Steps (each step's records go to ``bench-results/``, outputs and logs to ``bench-work/``):

1. install the peers into ``.peers-venv`` from ``../shared/bench/requirements-peers.txt``
   (+ constraints) unless it already holds them;
2. generate the corpus into ``bench-data/`` with ``../shared/bench/gen_corpus.py`` (seed 42);
3. run the single-process Python reference, then this project's word counts under
   ``../shared/bench/measure.py``, the tuned one (``benchmarks/wordcount_disco.py``) and the
   canonical one a user writes first (``benchmarks/wordcount_canonical.py``, over the corpus
   cut into 4 files with ``split -n l/4``) and the README's own first job
   (``benchmarks/readme_job.py``, one ``file://`` input), and check their output against
   the reference byte for byte;
4. run each peer through ``../shared/bench/run_peers.sh`` (PySpark last), word count and
   the peers' tiny job;
5. time our tiny job as a whole process (measure.py) and on a running master
   (``benchmarks/tiny_disco.py --latency``), and how fast a killed worker's task restarts
   (``benchmarks/retry_gap.py``);
6. the sort benchmark: ``--records`` 100-byte records from ``../shared/bench/gen_records.py``
   sorted by the Python reference (``python-sort``), by our pipeline job
   (``benchmarks/sort_disco.py``, output checked byte for byte against the reference),
   then by GNU sort and PySpark (``run_peers.sh`` sort peers), in the same run;
6b. many tiny tasks on a running master (``benchmarks/many_tasks.py``): 10,000 map tasks
   with and without a reduce, and a map job over 50,000 ``raw://`` inputs;
7. DDFS: ``benchmarks/ddfs_bench.py`` pushes and pulls a ``--ddfs-size`` file (1 GiB) with 3
   replicas on 3 local nodes and chunks the corpus, against ``dd`` in the same run;
8. Dask (issue 9): ``benchmarks/dask_bench.py`` runs the word count and a per-task job on the
   local backend and on a Dask cluster of 2 loopback workers, same run;
9. write ``docs/benchmarks.md`` (``benchmarks/bench_report.py``).

A failing step is recorded (with the end of its log) and the run goes on, so the page is
always written and says what did not work.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import bench_report  # noqa: E402

logger = logging.getLogger("benchmarks.run")

REFERENCE = "python-counter"
DEFAULT_PEERS = [
    "python-multiprocessing-2p",
    "dask-bag-processes",
    "dask-bag-processes-c1",
    "gnu-tr-sort-uniq",
    "pyspark-local2",
]
KNOWN_PEERS = [
    REFERENCE,
    "python-multiprocessing-2p",
    "dask-bag-processes",
    "dask-bag-processes-c1",
    "dask-bag-distributed",
    "pyspark-local2",
    "mrjob-local",
    "gnu-awk",
    "gnu-tr-sort-uniq",
]
SORT_REFERENCE = "python-sort"
SORT_PEERS = ["gnu-sort-p2", "pyspark-sortByKey"]  # PySpark last
SEED = 42
CANONICAL = bench_report.CANONICAL  # the canonical word count's system name
CANONICAL_FILES = 4
README_JOB = bench_report.README_JOB  # the README's "Your first job" over the corpus
TINY_SIZE = "1K"  # the peers' tiny job corpus (run_peers.sh default)
DISCO_ENV = ("DISCO_MASTER", "DISCO_MASTER_HOST", "DISCO_PORT")


class Bench:
    """Paths and settings of one run, and the steps."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.shared = Path(args.shared).resolve()
        self.venv = ROOT / ".peers-venv"
        self.data = ROOT / "bench-data"
        self.work = ROOT / "bench-work"
        self.results = ROOT / "bench-results"
        self.py = self.venv / "bin" / "python"
        self.label = "corpus-%s" % args.size
        self.corpus = self.data / ("%s-seed%d.txt" % (self.label, SEED))
        self.wc_results = self.results / "wordcount" / self.label
        self.wc_out = self.work / "out" / ("wordcount-%s" % self.label)
        self.sort_label = "records-%s" % args.records
        self.records = self.data / ("%s.txt" % self.sort_label)
        self.sort_results = self.results / "sort" / self.sort_label
        self.sort_out = self.work / "out" / ("sort-%s" % self.sort_label)
        self.ours = self.results / "disco"
        self.logs = self.work / "logs"
        self.tmp = self.work / "tmp"
        self.failures: dict[str, str] = {}
        self.ran: list[str] = []

    # -- helpers -------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """Environment for measured commands: no configured master, our tmp dir."""
        env = {k: v for k, v in os.environ.items() if k not in DISCO_ENV}
        env.update(
            VENV=str(self.venv),
            DATA_DIR=str(self.data),
            WORK_DIR=str(self.work),
            TMPDIR=str(self.tmp),
        )
        return env

    def fresh_tmp(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)

    def fail(self, step: str, log: Path, why: str = "") -> None:
        tail = ""
        if log.exists():
            lines = log.read_text(errors="replace").splitlines()
            tail = "\n".join(lines[-25:]).replace(str(ROOT) + "/", "")
        self.failures[step] = (why + "\n" if why else "") + tail
        logger.error("%s failed%s (log: %s)", step, ": " + why if why else "", log)

    def run_script(self, step: str, log: Path, args: list[str], timeout: float) -> None:
        """Run our benchmark script ``args[0]`` (in ``benchmarks/``) with the rest of
        ``args``, its output in ``log``; a timeout or a non-zero exit fails ``step``."""
        cmd = [sys.executable, str(HERE / args[0]), *args[1:]]
        with open(log, "w") as f:
            try:
                rc = subprocess.call(
                    cmd,
                    env=self.env(),
                    cwd=ROOT,
                    stdout=f,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                rc = -1
        if rc != 0:
            self.fail(step, log, "exit status %d" % rc)

    def measure(
        self, results: Path, log: Path, fields: dict[str, Any], cmd: list[str], timeout: float
    ) -> dict[str, Any]:
        """One run of ``cmd`` under measure.py; returns its JSON record."""
        results.parent.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.py),
            str(self.shared / "measure.py"),
            "--results",
            str(results),
            "--log",
            str(log),
            "--timeout",
            str(timeout),
        ]
        for k, v in fields.items():
            argv += ["--field", "%s=%s" % (k, v)]
        self.fresh_tmp()
        subprocess.run(
            argv + ["--"] + cmd, env=self.env(), check=True, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        shutil.rmtree(self.tmp, ignore_errors=True)
        return bench_report.load_jsonl(str(results))[-1]

    # -- 1. peers venv -------------------------------------------------------------------
    def ensure_venv(self) -> None:
        req = self.shared / "requirements-peers.txt"
        con = self.shared / "constraints-peers.txt"
        digest = hashlib.sha256(req.read_bytes() + con.read_bytes()).hexdigest()
        marker = self.venv / ".bench-requirements.sha256"
        if marker.exists() and marker.read_text().strip() == digest:
            return
        if not self.py.exists():
            logger.info("creating %s", self.venv)
            subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        logger.info("installing the peers into %s (large: dask, pyspark)", self.venv)
        subprocess.run(
            [str(self.py), "-m", "pip", "install", "-q", "-r", str(req), "-c", str(con)], check=True
        )
        marker.write_text(digest + "\n")

    # -- 2. inputs ----------------------------------------------------------------------
    def make_input(self, label: str, path: Path, kind: str, gen: list[str], spec: str) -> None:
        """Generate ``path`` with ``gen`` (a script of the harness and its arguments) and
        describe it in ``inputs/<label>.json``, unless both exist already."""
        meta = self.results / "inputs" / (label + ".json")
        if path.exists() and meta.exists():
            return
        self.data.mkdir(parents=True, exist_ok=True)
        logger.info("generating %s", path)
        t0 = time.perf_counter()
        subprocess.run([str(self.py), str(self.shared / gen[0]), str(path), *gen[1:]], check=True)
        gen_s = time.perf_counter() - t0
        md5 = hashlib.md5()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                md5.update(block)
        meta.parent.mkdir(parents=True, exist_ok=True)
        meta.write_text(
            json.dumps(
                {
                    "label": label,
                    "kind": kind,
                    "bytes": path.stat().st_size,
                    "md5": md5.hexdigest(),
                    "gen_s": round(gen_s, 2),
                    "spec": spec,
                }
            )
            + "\n"
        )

    def ensure_corpus(self) -> None:
        self.make_input(
            self.label,
            self.corpus,
            "corpus",
            ["gen_corpus.py", self.args.size, "--seed", str(SEED)],
            "gen_corpus.py OUT %s --seed %d" % (self.args.size, SEED),
        )

    def ensure_records(self) -> None:
        self.make_input(
            self.sort_label,
            self.records,
            "records",
            ["gen_records.py", self.args.records],
            "gen_records.py OUT %s" % self.args.records,
        )

    # -- 3./4. peers ---------------------------------------------------------------------
    def run_peer(self, peer: str, workloads: str = "wordcount tiny") -> None:
        env = self.env()
        env.pop("TMPDIR")  # run_peers.sh gives each peer its own
        env.update(
            RESULTS_DIR=str(self.results),
            REPORT=str(self.results / "PEERS.md"),
            SKIP_INSTALL="1",
            RUNS=str(self.args.runs),
            PEERS=peer,
            CORPUS_SIZE=self.args.size,
            SEED=str(SEED),
            TINY_SIZE=TINY_SIZE,
            RECORDS=self.args.records,
            WORKLOADS=workloads,
            PEER_TIMEOUT=str(self.args.timeout),
        )
        log = self.logs / ("run_peers-%s-%s.log" % (workloads.split()[0], peer))
        log.parent.mkdir(parents=True, exist_ok=True)
        logger.info("peer %s", peer)
        with open(log, "w") as f:
            rc = subprocess.call(
                ["bash", str(self.shared / "run_peers.sh")],
                env=env,
                cwd=ROOT,
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        self.ran.append(peer)
        if rc != 0:
            self.fail("peer " + peer, log, "run_peers.sh exit status %d" % rc)

    def reference_output(self, outdir: Path, name: str, script: str, inp: Path) -> Path:
        """The reference output ``<outdir>/<name>.out``; made (unmeasured) with the peer
        ``script`` when no earlier run left one."""
        ref = outdir / (name + ".out")
        if not ref.exists():
            logger.info("no reference output yet: running %s (not measured)", script)
            ref.parent.mkdir(parents=True, exist_ok=True)
            cmd = [str(self.py), str(self.shared / "peers" / script), str(inp), str(ref)]
            subprocess.run(cmd, check=True)
        return ref

    def run_ours_workload(
        self,
        kind: str,
        label: str,
        inp: Path,
        outdir: Path,
        script: str,
        reference: Path,
        system: str = "disco",
        script_input: Path | None = None,
    ) -> None:
        """Measure ``benchmarks/<script> INPUT OUTPUT`` ``--runs`` times into
        ``<kind>/<label>/<system>.jsonl`` and compare its output with ``reference``.

        INPUT is ``script_input`` when given (the same data as ``inp``, laid out another
        way), else ``inp``."""
        resdir = self.results / kind / label
        results = resdir / (system + ".jsonl")
        log = self.logs / ("%s-%s" % (kind, label)) / (system + ".log")
        out = outdir / (system + ".out")
        results.unlink(missing_ok=True)
        log.unlink(missing_ok=True)
        phases = self.ours / "phases"
        phases.mkdir(parents=True, exist_ok=True)
        if system not in self.ran:
            self.ran.append(system)
        rec: dict[str, Any] = {}
        for run in range(1, self.args.runs + 1):
            out.unlink(missing_ok=True)
            warm_cache(script_input or inp)
            logger.info("%s %s, run %d", system, kind, run)
            prefix = kind if system == "disco" else system.removeprefix("disco-")
            cmd = [
                sys.executable,
                str(HERE / script),
                str(script_input or inp),
                str(out),
                "--phases",
                str(phases / ("%s-%d.json" % (prefix, run))),
            ]
            fields = {
                "workload": kind,
                "input": label,
                "input_bytes": inp.stat().st_size,
                "peer": system,
                "run": run,
                "runs_requested": self.args.runs,
                "timeout_s": self.args.timeout,
            }
            rec = self.measure(results, log, fields, cmd, self.args.timeout)
            if rec.get("rc") != 0 or rec.get("timed_out"):
                self.fail(
                    "%s %s" % (system, kind),
                    log,
                    "run %d: exit status %s%s"
                    % (run, rec.get("rc"), ", timed out" if rec.get("timed_out") else ""),
                )
                break
        verify = resdir / (system + ".verify.json")
        if rec.get("rc") == 0 and out.exists():
            if files_equal(out, reference):
                detail = "byte-identical to %s" % reference.stem
                status = {"status": "identical", "detail": detail}
            else:
                status = {"status": "DIFFERS", "detail": first_difference(out, reference)}
        else:
            status = {"status": "missing", "detail": "no complete output"}
        verify.write_text(json.dumps(status) + "\n")
        logger.info("%s %s output: %s", system, kind, status["status"])

    # -- 3. our word count ---------------------------------------------------------------
    def run_ours(self) -> None:
        ref = self.reference_output(self.wc_out, REFERENCE, "wc_python.py", self.corpus)
        self.run_ours_workload(
            "wordcount", self.label, self.corpus, self.wc_out, "wordcount_disco.py", ref
        )
        self.run_ours_workload(
            "wordcount",
            self.label,
            self.corpus,
            self.wc_out,
            "wordcount_canonical.py",
            ref,
            system=CANONICAL,
            script_input=self.split_corpus(),
        )
        self.run_ours_workload(
            "wordcount", self.label, self.corpus, self.wc_out, "readme_job.py", ref, README_JOB
        )

    def split_corpus(self) -> Path:
        """The corpus cut into ``CANONICAL_FILES`` files of whole lines (``split -n l/4``),
        made once next to it: the canonical word count's ``file://`` inputs."""
        parts = self.data / ("%s-seed%d.split%d" % (self.label, SEED, CANONICAL_FILES))
        done = parts / ".complete"
        if not done.exists():
            shutil.rmtree(parts, ignore_errors=True)
            parts.mkdir(parents=True)
            cmd = ["split", "-n", "l/%d" % CANONICAL_FILES, str(self.corpus), "part-"]
            subprocess.run(cmd, check=True, cwd=parts)
            done.write_text("")
        return parts

    # -- 6. sort -------------------------------------------------------------------------
    def run_sort(self, peers: bool) -> None:
        """Reference, ours, then the sort peers (PySpark last), on the same records."""
        self.ensure_records()
        if peers:
            for name in [SORT_REFERENCE] + SORT_PEERS:
                for suffix in (".jsonl", ".verify.json"):
                    (self.sort_results / (name + suffix)).unlink(missing_ok=True)
            self.run_peer(SORT_REFERENCE, "sort")
        ref = self.reference_output(self.sort_out, SORT_REFERENCE, "sort_python.py", self.records)
        self.run_ours_workload(
            "sort", self.sort_label, self.records, self.sort_out, "sort_disco.py", ref
        )
        for peer in SORT_PEERS if peers else []:
            self.run_peer(peer, "sort")

    # -- 5. our tiny job -----------------------------------------------------------------
    def run_tiny(self) -> None:
        results = self.ours / "tiny.jsonl"
        results.unlink(missing_ok=True)
        log = self.logs / "disco-tiny.log"
        log.unlink(missing_ok=True)
        for run in range(1, self.args.tiny_runs + 1):
            cmd = [
                sys.executable,
                str(HERE / "tiny_disco.py"),
                "--json",
                str(self.ours / "phases" / ("tiny-%d.json" % run)),
            ]
            rec = self.measure(
                results,
                log,
                {"workload": "tiny", "input": "raw-x2", "peer": "disco", "run": run},
                cmd,
                120,
            )
            if rec.get("rc") != 0 or rec.get("timed_out"):
                self.fail(
                    "disco tiny job (whole process)",
                    log,
                    "run %d: exit status %s" % (run, rec.get("rc")),
                )
                break
        out = self.ours / "latency.json"
        out.unlink(missing_ok=True)
        log = self.logs / "disco-latency.log"
        logger.info("disco tiny job on a running master, %d runs", self.args.latency_runs)
        self.fresh_tmp()
        self.run_script(
            "disco tiny job (running master)",
            log,
            ["tiny_disco.py", "--latency", str(self.args.latency_runs), "--json", str(out)],
            300,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- 5b. retries ----------------------------------------------------------------------
    def run_retries(self) -> None:
        """Kill -> next attempt start of killed workers (``retry_gap.py``)."""
        out = self.ours / "retries.json"
        out.unlink(missing_ok=True)
        log = self.logs / "disco-retries.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        logger.info("disco retries: %d workers killed", self.args.retry_kills)
        self.fresh_tmp()
        self.run_script(
            "disco retries",
            log,
            ["retry_gap.py", "--kills", str(self.args.retry_kills), "--json", str(out)],
            300,
        )
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- 6b. many tiny tasks -----------------------------------------------------------
    def run_many_tasks(self) -> None:
        """10,000 tiny map tasks (with and without a reduce), 50,000 inputs."""
        out = self.ours / "many_tasks.json"
        out.unlink(missing_ok=True)
        log = self.logs / "disco-many-tasks.log"
        logger.info(
            "disco many tasks: %d tiny map tasks, a %d-input job",
            self.args.many_tasks,
            self.args.many_inputs,
        )
        cmd = [
            sys.executable,
            str(HERE / "many_tasks.py"),
            "--tasks",
            str(self.args.many_tasks),
            "--inputs",
            str(self.args.many_inputs),
            "--json",
            str(out),
        ]
        self.fresh_tmp()
        with open(log, "w") as f:
            try:
                rc = subprocess.call(
                    cmd, env=self.env(), cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, timeout=3600
                )
            except subprocess.TimeoutExpired:
                rc = -1
        shutil.rmtree(self.tmp, ignore_errors=True)
        if rc != 0:
            self.fail("disco many tasks", log, "exit status %d" % rc)

    # -- 7. DDFS --------------------------------------------------------------------------
    def run_ddfs(self) -> None:
        """Push/pull of a ``--ddfs-size`` file with 3 replicas and chunk of the corpus."""
        out = self.ours / "ddfs.json"
        log = self.logs / "disco-ddfs.log"
        logger.info("DDFS: push/pull %s with 3 replicas, chunk of the corpus", self.args.ddfs_size)
        args = ["ddfs_bench.py", "--corpus", str(self.corpus), "--size", self.args.ddfs_size]
        args += ["--work", str(self.work / "ddfs"), "--json", str(out)]
        self.run_script("DDFS benchmark", log, args, 1800)

    def ensure_bytecode(self) -> None:
        """Write the bytecode caches of ``disco`` and the benchmark scripts, as an installed
        package has them: with ``PYTHONDONTWRITEBYTECODE`` set (some shells and CI set it)
        every process would compile the whole master from source, about 0.1 s of every
        whole-process figure that a user does not pay."""
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", str(ROOT / "disco"), str(HERE)],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    # -- 8. Dask backend -----------------------------------------------------------------
    def run_dask(self) -> None:
        """Word count and per-task cost: local backend vs 2 loopback Dask workers."""
        out = self.ours / "dask.json"
        log = self.logs / "disco-dask.log"
        logger.info("Dask: word count and per-task cost, local vs 2 loopback Dask workers")
        size = "4M" if self.args.quick else "32M"
        args = ["dask_bench.py", "--corpus", str(self.corpus), "--size", size, "--json", str(out)]
        self.run_script("Dask benchmark", log, args, 1800)

    # -- the whole run -------------------------------------------------------------------
    def run(self) -> None:
        started = datetime.datetime.now(datetime.UTC)
        t0 = time.perf_counter()
        self.ensure_bytecode()
        self.ensure_venv()
        self.ensure_corpus()
        peers = [] if self.args.skip_peers else self.args.peers
        # same-run comparisons: forget earlier records of what runs now
        for name in ([REFERENCE] if peers else []) + peers:
            for d in (self.wc_results, self.results / "tiny" / ("corpus-" + TINY_SIZE)):
                for suffix in (".jsonl", ".verify.json"):
                    (d / (name + suffix)).unlink(missing_ok=True)
        shutil.rmtree(self.ours, ignore_errors=True)
        self.ours.mkdir(parents=True)
        if peers:
            self.run_peer(REFERENCE)
        self.run_ours()
        self.run_tiny()
        self.run_retries()
        for peer in sorted(peers, key=lambda p: p.startswith("pyspark")):  # PySpark last
            self.run_peer(peer)
        if not self.args.skip_sort:
            self.run_sort(bool(peers))
        if not self.args.skip_many_tasks:
            self.run_many_tasks()
        if not self.args.skip_ddfs:
            self.run_ddfs()
        if not self.args.skip_dask:
            self.run_dask()
        info = {
            "started": started.strftime("%Y-%m-%d %H:%M"),
            "seconds": round(time.perf_counter() - t0),
            "command": " ".join([".venv/bin/python benchmarks/run.py"] + (self.args.argv or [])),
            "label": self.label,
            "tiny_label": "corpus-" + TINY_SIZE,
            "sort_label": None if self.args.skip_sort else self.sort_label,
            "sort_peers": [SORT_REFERENCE] + SORT_PEERS if peers else [],
            "ddfs": not self.args.skip_ddfs,
            "dask": not self.args.skip_dask,
            "input_bytes": self.corpus.stat().st_size,
            "runs": self.args.runs,
            "peers": [REFERENCE] + peers if peers else [],
            "systems_ran": self.ran,
            "quick": self.args.quick,
            "python": platform.python_version(),
            "cores": os.cpu_count(),
            **git_state(),
        }
        (self.results / "run.json").write_text(json.dumps(info, indent=1) + "\n")
        (self.ours / "failures.json").write_text(json.dumps(self.failures, indent=1) + "\n")
        text = bench_report.build_report(
            bench_report.load_all(str(self.results), str(HERE / "NOTES.md"))
        )
        out = Path(self.args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        logger.info("wrote %s (%d s)", out, info["seconds"])


# -- small helpers --------------------------------------------------------------------------
def warm_cache(path: Path) -> None:
    """Read ``path`` (a file, or every file of a directory) into the page cache."""
    for p in sorted(path.iterdir()) if path.is_dir() else [path]:
        with open(p, "rb") as f:
            while f.read(1 << 24):
                pass


def files_equal(a: Path, b: Path) -> bool:
    return subprocess.call(["cmp", "-s", str(a), str(b)]) == 0


def first_difference(a: Path, b: Path) -> str:
    p = subprocess.run(["cmp", str(a), str(b)], capture_output=True, text=True)
    return (p.stdout or p.stderr).strip().replace(str(a.parent) + "/", "")


def git_state() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        p = subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True, text=True)
        return p.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD") or "?",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }


def parse_peers(text: str) -> list[str]:
    names = [p for p in text.replace(",", " ").split() if p]
    if names == ["all"]:
        return [p for p in KNOWN_PEERS if p != REFERENCE]
    unknown = [p for p in names if p not in KNOWN_PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(
            "unknown peer(s) %s; known: %s" % (", ".join(unknown), ", ".join(KNOWN_PEERS))
        )
    return [p for p in names if p != REFERENCE]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", help="corpus size, K/M/G = powers of 1024 (default 256M)")
    ap.add_argument("--runs", type=int, help="runs per system (default 3)")
    ap.add_argument(
        "--peers",
        type=parse_peers,
        default=DEFAULT_PEERS,
        help="comma-separated peer names, or 'all' (default: %s; the Python "
        "reference always runs)" % ",".join(DEFAULT_PEERS),
    )
    ap.add_argument(
        "--skip-peers",
        action="store_true",
        help="run only ours; peers' earlier figures are shown, marked",
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: 16M corpus, 1 run")
    ap.add_argument("--records", help="sort benchmark records, K/M/G = powers of 1000 (default 2M)")
    ap.add_argument("--skip-sort", action="store_true", help="leave out the sort benchmark")
    ap.add_argument("--ddfs-size", help="DDFS push/pull file size (default 1G)")
    ap.add_argument("--skip-ddfs", action="store_true", help="leave out the DDFS benchmark")
    ap.add_argument(
        "--skip-dask", action="store_true", help="leave out the local-vs-Dask benchmark"
    )
    ap.add_argument("--tiny-runs", type=int, help="whole-process tiny job runs (default 15)")
    ap.add_argument(
        "--latency-runs", type=int, help="tiny jobs timed on a running master (default 40)"
    )
    ap.add_argument("--retry-kills", type=int, help="workers killed by the retries benchmark")
    ap.add_argument("--many-tasks", type=int, help="tiny map tasks per job (default 10000)")
    ap.add_argument("--many-inputs", type=int, help="inputs of the big map job (default 50000)")
    ap.add_argument("--skip-many-tasks", action="store_true", help="leave out many_tasks.py")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per measured run")
    ap.add_argument(
        "--shared", default=str(ROOT.parent / "shared" / "bench"), help="the peer harness folder"
    )
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    quick = args.quick
    args.size = args.size or ("16M" if quick else "256M")
    args.records = args.records or ("100K" if quick else "2M")
    args.ddfs_size = args.ddfs_size or ("64M" if quick else "1G")
    args.runs = args.runs or (1 if quick else 3)
    args.tiny_runs = args.tiny_runs or (3 if quick else 15)
    args.latency_runs = args.latency_runs or (5 if quick else 40)
    args.retry_kills = args.retry_kills or (2 if quick else 8)
    args.many_tasks = args.many_tasks or (500 if quick else 10_000)
    args.many_inputs = args.many_inputs or (1000 if quick else 50_000)
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")
    bench = Bench(parse_args(argv))
    bench.run()
    if bench.failures:
        logger.warning("failed steps: %s (see %s)", ", ".join(bench.failures), bench.args.out)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
