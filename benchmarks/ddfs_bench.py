#!/usr/bin/env python3
"""DDFS throughput: push and pull of a big file with 3 replicas, and ``chunk`` of the corpus.

    python benchmarks/ddfs_bench.py --corpus PATH [--size 1G] [--work DIR] [--json OUT]

Measured in one run, on this machine:

1. the raw disk write speed, with ``dd`` (``bs=1M``), once through the page cache and once
   with ``conv=fdatasync`` (data on the disk before dd exits);
2. a master with three local nodes (``localhost``, ``127.0.0.2``, ``127.0.0.3``) started in
   a separate process, ``DDFS_BLOB_REPLICAS = 3``;
3. ``DDFS.push`` of a ``--size`` file of random bytes (every byte is written three times,
   once per node), then ``DDFS.pull`` of it, read to the end;
4. ``DDFS.chunk`` of the word-count corpus into record blobs (library.md 16, default
   chunk size), 3 replicas.

The figures (seconds, MB/s of file bytes, and ratios to ``dd``) are printed and written to
``--json`` for ``bench_report.py``.  MB = 10^6 bytes, as ``dd`` counts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
NODES = [("localhost", 2), ("127.0.0.2", 2), ("127.0.0.3", 2)]
REPLICAS = 3
MB = 1_000_000


def parse_size(text: str) -> int:
    """``1G`` -> 2**30; K, M, G are powers of 1024."""
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * mult)


def dd_write(path: Path, size: int, sync: bool) -> float:
    """Seconds for ``dd`` to write ``size`` bytes of zeros to ``path`` (1 MiB blocks)."""
    cmd = ["dd", "if=/dev/zero", "of=%s" % path, "bs=1M", "count=%d" % (size >> 20)]
    if sync:
        cmd.append("conv=fdatasync")
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    seconds = time.perf_counter() - t0
    path.unlink()
    return seconds


def make_random_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)  # one random MiB repeated: incompressible enough, fast
    with open(path, "wb") as f:
        for n in range(size >> 20):
            f.write(block[n % 7 :] + block[: n % 7])


def serve(root: str) -> int:
    """Child process: a master with three local nodes until stdin closes."""
    from disco.embedded import EmbeddedMaster

    settings = {"DDFS_BLOB_REPLICAS": str(REPLICAS), "DDFS_TAG_REPLICAS": str(REPLICAS)}
    with EmbeddedMaster(root, nodes=NODES, settings=settings, export_env=False) as em:
        print(em.url, flush=True)
        sys.stdin.read()
    return 0


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(size: int, seconds: float) -> float:
    return round(size / MB / seconds, 1) if seconds > 0 else 0.0


def run(corpus: Path | None, size: int, work: Path) -> dict[str, Any]:
    from urllib.parse import urlsplit

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    figures: dict[str, Any] = {"size_bytes": size, "replicas": REPLICAS, "nodes": len(NODES)}
    dd_cache = dd_write(work / "dd.bin", size, sync=False)
    dd_sync = dd_write(work / "dd.bin", size, sync=True)
    figures["dd_cache_MBps"] = rate(size, dd_cache)
    figures["dd_fdatasync_MBps"] = rate(size, dd_sync)

    source = work / "blob.bin"
    make_random_file(source, size)
    from tiny_disco import MasterProcess

    master = MasterProcess([os.path.abspath(__file__), "--serve", str(work / "root")])
    try:
        os.environ["DISCO_MASTER"] = master.url
        os.environ["DISCO_PORT"] = str(urlsplit(master.url).port)
        from disco.ddfs import DDFS

        ddfs = DDFS(master.url)
        server0, client0 = process_cpu(master.proc.pid), time.process_time()
        figures["load_average_before"] = os.getloadavg()[0]
        t0 = time.perf_counter()
        _tag, blobs = ddfs.push("bench:push", [str(source)], replicas=REPLICAS)
        figures["push_s"] = round(time.perf_counter() - t0, 4)
        # CPU of the process serving the three nodes' uploads (and of this one, sending)
        figures["push_server_cpu_s"] = round(process_cpu(master.proc.pid) - server0, 2)
        figures["push_client_cpu_s"] = round(time.process_time() - client0, 2)
        assert len(blobs[0]) == REPLICAS, blobs
        source.unlink()

        t0 = time.perf_counter()
        read = 0
        for blob in ddfs.pull("bench:push"):
            while True:
                data = blob.read(1 << 20)
                if not data:
                    break
                read += len(data)
        figures["pull_s"] = round(time.perf_counter() - t0, 4)
        assert read == size, (read, size)

        if corpus is None:
            return figures
        csize = corpus.stat().st_size
        t0 = time.perf_counter()
        _tag, chunks = ddfs.chunk("bench:chunk", [str(corpus.resolve())], replicas=REPLICAS)
        figures["chunk_s"] = round(time.perf_counter() - t0, 4)
        figures["chunk_input_bytes"] = csize
        figures["chunk_blobs"] = len(chunks)
    finally:
        master.close()
        shutil.rmtree(work, ignore_errors=True)
        finish(figures, size)
    return figures


def finish(figures: dict[str, Any], size: int) -> None:
    """The rates and ratios of what was measured."""
    if "push_s" not in figures:
        return
    figures["push_MBps"] = rate(size, figures["push_s"])
    figures["pull_MBps"] = rate(size, figures.get("pull_s", 0.0))
    if "chunk_s" in figures:
        figures["chunk_MBps"] = rate(figures["chunk_input_bytes"], figures["chunk_s"])
    for op in ("push", "pull", "chunk"):
        if "%s_MBps" % op not in figures:
            continue
        for dd in ("dd_cache", "dd_fdatasync"):
            figures["%s_vs_%s" % (op, dd)] = round(
                figures["%s_MBps" % op] / figures["%s_MBps" % dd], 3
            )
    figures["push_server_cpu_s_per_GB"] = round(
        figures["push_server_cpu_s"] / (size * REPLICAS / 1e9), 2
    )


def main(argv: list[str] | None = None) -> int:
    from harness import emit

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", metavar="ROOT", help=argparse.SUPPRESS)
    ap.add_argument("--corpus", help="text file for the chunk figure")
    ap.add_argument("--no-chunk", action="store_true", help="push and pull only")
    ap.add_argument("--size", default="1G", help="pushed file size (default 1G)")
    ap.add_argument("--work", default=str(ROOT / "bench-work" / "ddfs"))
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    if not args.corpus and not args.no_chunk:
        ap.error("--corpus is required (or --no-chunk)")
    corpus = None if args.no_chunk else Path(args.corpus)
    figures = run(corpus, parse_size(args.size), Path(args.work))
    emit(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
