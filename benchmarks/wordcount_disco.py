#!/usr/bin/env python3
"""Word count benchmark job: this project's entry in the peer comparison.

    python benchmarks/wordcount_disco.py INPUT OUTPUT [--splits N] [--partitions P]
                                         [--block-size BYTES] [--no-combiner] [--master URL]

Written the way a Disco user would write a tuned word count, with the public API only
(library.md sections 2, 3, 10, 12):

- the input file is cut on the client into N line-aligned byte ranges, each given to the
  job as a ``raw://<path>:<start>:<end>`` input (the ``raw://`` scheme hands the text after
  ``raw://`` to the input chain, library.md 13);
- ``map_reader`` (the last stream of the map input chain, library.md 10.1 and 12.1) opens
  the file on the node and yields the range in large line-aligned ``bytes`` blocks;
- ``map`` counts a block with ``collections.Counter`` and emits ``(word, count)`` pairs;
  a sum ``combiner`` folds the pairs of all blocks of a task before they are written
  (library.md 8.1), so each map task writes each distinct word once per partition;
- ``partitions`` reduce tasks (words spread by CRC-32, cheaper than the default md5) sum
  the counts;
- the client reads the results with ``result_iterator``, sorts them by word and writes
  ``word<TAB>count`` lines, the format of the peers in ``../shared/bench/peers/``.

With no master configured (no ``DISCO_MASTER``) the job runs on the embedded default master
(``disco.embedded.default_master``), so the whole-process time includes starting it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import zlib
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_BLOCK = 16 << 20


# -- client side: line-aligned byte ranges --------------------------------------------------
def line_aligned_ranges(path: str, n: int) -> list[tuple[int, int]]:
    """Cut ``path`` into at most ``n`` non-empty ``[start, end)`` ranges of whole lines.

    Each boundary is moved forward to just after the next newline, so a line belongs to
    exactly one range; together the ranges cover the file.
    """
    size = os.path.getsize(path)
    if size == 0:
        return []
    n = max(1, n)
    bounds = [0]
    with open(path, "rb") as f:
        for i in range(1, n):
            b = size * i // n
            if b <= bounds[-1]:
                continue
            f.seek(b - 1)
            f.readline()  # b-1 is a newline: stays at b; else skips to the line's end
            aligned = min(f.tell(), size)
            if aligned > bounds[-1]:
                bounds.append(aligned)
    if bounds[-1] < size:
        bounds.append(size)
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def range_inputs(path: str, n: int) -> list[str]:
    """The job inputs: ``raw://<abs path>:<start>:<end>`` for each line-aligned range."""
    path = os.path.abspath(path)
    return ["raw://%s:%d:%d" % (path, s, e) for s, e in line_aligned_ranges(path, n)]


# -- job functions (shipped by value: they use builtins and local imports only) ------------
def range_reader(stream: Any, size: Any, url: Any, params: Any) -> Iterator[bytes]:
    """map_reader: turn the ``raw://`` text ``<path>:<start>:<end>`` into bytes blocks.

    Blocks are about ``params.block_size`` bytes and end at a line end (the range itself
    starts and ends at line boundaries).
    """
    spec = stream.read() if hasattr(stream, "read") else str(stream)
    if isinstance(spec, bytes):
        spec = spec.decode("utf-8")
    path, start, end = spec.rsplit(":", 2)
    start, end = int(start), int(end)
    block_size = int(getattr(params, "block_size", 16 << 20))
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        while pos < end:
            block = f.read(min(block_size, end - pos))
            if not block:
                break
            pos += len(block)
            if pos < end and not block.endswith(b"\n"):
                rest = f.readline()
                pos += len(rest)
                block += rest
            yield block


def count_block(block: bytes, params: Any) -> Any:
    """map: local aggregation of one block, ``(word, count)`` pairs (bytes words)."""
    from collections import Counter

    return Counter(block.split()).items()


def sum_counts(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    """combiner: fold the pairs of every block of a map task; emit them at the end."""
    if done:
        return buf.items()
    buf[key] = buf.get(key, 0) + value
    return None


def crc_partition(key: bytes, nr_partitions: int, params: Any) -> int:
    """partition: CRC-32 of the word (about 5x cheaper than the default md5, library.md 8.2)."""
    return params.crc32(key) % nr_partitions


def reduce_counts(iter: Any, params: Any) -> Any:
    """reduce (2-argument form): sum the counts of each word of this partition."""
    totals: dict = {}
    get = totals.get
    for word, count in iter:
        totals[word] = get(word, 0) + count
    return totals.items()


# -- client --------------------------------------------------------------------------------
def run_wordcount(
    path: str,
    master: str,
    *,
    splits: int,
    partitions: int,
    block_size: int,
    combiner: bool = True,
    phases: dict[str, float] | None = None,
) -> list[tuple[bytes, int]]:
    """Run the job on ``master`` and return the ``(word, count)`` pairs sorted by word.

    Seconds spent in each phase are stored into ``phases`` when it is given.
    """
    from disco.core import Job, result_iterator
    from disco.worker.classic.worker import Params

    t_split = time.perf_counter()
    inputs = range_inputs(path, splits)
    jobargs: dict[str, Any] = {
        "input": inputs,
        "map_reader": range_reader,
        "map": count_block,
        "partitions": partitions,
        "partition": crc_partition,
        "reduce": reduce_counts,
        "params": Params(block_size=block_size, crc32=zlib.crc32),
    }
    if combiner:
        jobargs["combiner"] = sum_counts
    t0 = time.perf_counter()
    job = Job(name="wordcount_bench", master=master).run(**jobargs)
    results = job.wait(show=bool(os.environ.get("DISCO_EVENTS")))
    t1 = time.perf_counter()
    pairs = sorted(
        (word if isinstance(word, bytes) else str(word).encode("utf-8"), int(count))
        for word, count in result_iterator(results)
    )
    t2 = time.perf_counter()
    logger.info("job %s: %.2fs to results, %.2fs to read and sort", job.name, t1 - t0, t2 - t1)
    if phases is not None:
        phases.update(split_s=t0 - t_split, job_s=t1 - t0, read_sort_s=t2 - t1)
        phases["inputs"] = len(inputs)
    try:
        job.purge()
    except Exception as e:  # the data is in a temporary root anyway; keep the figures
        logger.warning("could not purge %s: %s", job.name, e)
    return pairs


def write_counts(pairs: list[tuple[bytes, int]], out: str) -> None:
    """Write ``word<TAB>count`` lines, as the peers do."""
    with open(out, "wb") as f:
        f.writelines(b"%s\t%d\n" % (w, c) for w, c in pairs)


def parse_size(text: str) -> int:
    """``16M`` -> 16 MiB; K, M, G are powers of 1024."""
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(float(text.rstrip("KMG")) * mult)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    cores = os.cpu_count() or 2
    ap.add_argument("--splits", type=int, default=2 * cores, help="map inputs (byte ranges)")
    ap.add_argument("--partitions", type=int, default=2, help="reduce tasks")
    ap.add_argument("--block-size", type=parse_size, default=DEFAULT_BLOCK)
    ap.add_argument("--no-combiner", action="store_true")
    ap.add_argument("--master", help="master URL (default: configured, else embedded)")
    ap.add_argument("--phases", metavar="FILE", help="write the seconds of each phase as JSON")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    from harness import master_url

    t0 = time.perf_counter()
    phases: dict[str, float] = {}
    master = master_url(args.master)
    phases["master_s"] = time.perf_counter() - t0
    pairs = run_wordcount(
        args.input,
        master,
        splits=args.splits,
        partitions=args.partitions,
        block_size=args.block_size,
        combiner=not args.no_combiner,
        phases=phases,
    )
    t1 = time.perf_counter()
    write_counts(pairs, args.output)
    phases["write_s"] = time.perf_counter() - t1
    phases["main_s"] = time.perf_counter() - t0
    phases["words"] = len(pairs)
    if args.phases:
        with open(args.phases, "w") as f:
            json.dump(phases, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
