#!/usr/bin/env python3
"""The client's HTTP cost: many small results and many DDFS tag operations.

    python benchmarks/http_reuse.py [--results 2000] [--tag-ops 500] [--repeat 3]
                                    [--keep-alive] [--json OUT]

A master (``EmbeddedMaster``, one local node) runs in a child process so that the timed
client has the interpreter to itself.  Measured, best of ``--repeat``, as wall seconds
and as CPU seconds of the client process (steadier on a shared machine):

1. ``result_iterator`` over ``--results`` small result files (internal record format,
   10 records each) read over HTTP from the master's data server (``http://`` URLs, so
   nothing is read from the local disk);
2. ``--tag-ops`` ``DDFS.setattr`` calls, then as many ``DDFS.get`` calls, on one tag.

``--keep-alive`` is an experiment: the child master then lets its ``/disco`` and
``/ddfs`` responses keep the connection open (master-api.md 1.2 says they close it), to
measure what the client's connection reuse would buy if they did.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RECORDS_PER_RESULT = 10


def serve(root: str, keep_alive: bool) -> int:
    """Child: run a master on ``root``, print its URL, stop when stdin closes."""
    if keep_alive:
        import disco.master.server as server

        async def keep(request: Any, response: Any) -> None:
            return None

        server._close_disco_connections = keep  # type: ignore[assignment]
    from disco.embedded import EmbeddedMaster

    with EmbeddedMaster(root, export_env=False) as em:
        print(em.url, flush=True)
        sys.stdin.read()
    return 0


def write_results(data_dir: Path, count: int) -> list[str]:
    """``count`` small result files under the master's ``DISCO_DATA``; their paths."""
    from disco.fileutils import DiscoOutput

    names = []
    for i in range(count):
        rel = "bench/%02x/r-%d" % (i % 256, i)
        path = data_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        out = DiscoOutput(str(path))
        for j in range(RECORDS_PER_RESULT):
            out.add(b"key-%d-%d" % (i, j), j)
        out.close()
        names.append(rel)
    return names


def best(repeat: int, run: Any) -> tuple[float, float]:
    """Best wall seconds and best CPU seconds of this (client) process over ``repeat``."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return min(walls), min(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=2000)
    parser.add_argument("--tag-ops", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-alive", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve, args.keep_alive)

    from harness import emit

    with tempfile.TemporaryDirectory(prefix="http-bench-") as root:
        cmd = [sys.executable, __file__, "--serve", root]
        if args.keep_alive:
            cmd.append("--keep-alive")
        child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout is not None
            url = child.stdout.readline().strip()
            figures = measure(url, Path(root) / "data", args)
        finally:
            assert child.stdin is not None
            child.stdin.close()
            child.wait(30)
    emit(figures, args.json)
    return 0


def measure(url: str, data_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    from disco.core import result_iterator
    from disco.ddfs import DDFS

    names = write_results(data_dir, args.results)
    urls = ["%s/disco/%s" % (url, name) for name in names]

    def read_all() -> None:
        n = sum(1 for _ in result_iterator(urls))
        assert n == len(urls) * RECORDS_PER_RESULT, n

    ddfs = DDFS(url)
    ddfs.tag("bench:http", [["http://example.invalid/blob"]])

    def setattrs() -> None:
        for i in range(args.tag_ops):
            ddfs.setattr("bench:http", "a", str(i))

    def gets() -> None:
        for _ in range(args.tag_ops):
            ddfs.get("bench:http")

    import disco

    results_s, results_cpu = best(args.repeat, read_all)
    setattr_s, setattr_cpu = best(args.repeat, setattrs)
    get_s, get_cpu = best(args.repeat, gets)
    return {
        "disco": os.path.dirname(disco.__file__),
        "keep_alive_server": args.keep_alive,
        "results": args.results,
        "result_iterator_s": round(results_s, 3),
        "results_per_s": round(args.results / results_s, 1),
        "result_iterator_client_cpu_s": round(results_cpu, 3),
        "tag_ops": args.tag_ops,
        "setattr_s": round(setattr_s, 3),
        "get_s": round(get_s, 3),
        "setattr_client_cpu_s": round(setattr_cpu, 3),
        "get_client_cpu_s": round(get_cpu, 3),
        "tag_ops_per_s": round(2 * args.tag_ops / (setattr_s + get_s), 1),
    }


if __name__ == "__main__":
    sys.exit(main())
