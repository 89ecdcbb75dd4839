#!/usr/bin/env python3
"""The fork base's own costs per task (issue 11 point 8, issue 13 "many tasks").

    python benchmarks/fork_floor.py [--forks 400] [--loop 2000]

Run from the tree to measure (its ``disco`` is imported).  This process does what the
zygote and a job's warm process do before their first fork (``_preload``, the
rehearsal, ``gc.freeze``, ``malloc_trim``, the trimmed at-fork hooks), then:

* ``fork``: 5 rounds of ``--forks`` bare ``fork`` + child ``_exit(0)`` + ``waitpid``;
  the medians of the parent's and the children's CPU and minor faults per fork, with
  the process's mappings (VMAs) and anonymous memory (the floor every task pays);
* ``loop``: ``_WarmProcess.serve`` answers ``--loop`` requests of a feeder process
  (one at a time, each with a report path and a registry file); each task writes
  ``\\0D`` on its pipe and exits at once: the warm process's CPU and minor faults per
  task (every page its loop writes between two forks is copied).

Printed as one JSON object.  CPU and faults, not wall time, are the signal on a
shared machine; compare trees by alternating runs.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sys
import time
from typing import Any


def _feeder(sock: socket.socket, n: int, where: str) -> None:
    """In a child: send ``n`` requests, each after the previous task's exit."""
    f = sock.makefile("rb")
    for i in range(n):
        a, b = socket.socketpair()
        line = json.dumps({"id": i, "report": "%s/report-%d" % (where, i)}).encode() + b"\n"
        socket.send_fds(sock, [line], [b.fileno()])
        b.close()
        while True:
            msg = f.readline()
            if not msg or b'"exit"' in msg:
                break
        a.close()
    sock.close()
    os._exit(0)


def _usage(who: int) -> tuple[float, int]:
    r = resource.getrusage(who)
    return r.ru_utime + r.ru_stime, r.ru_minflt


def _forks(n: int) -> dict[str, Any]:
    rounds = []
    for _ in range(5):
        p0, c0 = _usage(resource.RUSAGE_SELF), _usage(resource.RUSAGE_CHILDREN)
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
        p1, c1 = _usage(resource.RUSAGE_SELF), _usage(resource.RUSAGE_CHILDREN)
        rounds.append(
            (
                (p1[0] - p0[0] + c1[0] - c0[0]) / n * 1e3,
                (p1[0] - p0[0]) / n * 1e3,
                (c1[0] - c0[0]) / n * 1e3,
                (p1[1] - p0[1]) / n,
                (c1[1] - c0[1]) / n,
            )
        )
    rounds.sort()
    total, parent, child, pflt, cflt = rounds[len(rounds) // 2]
    return {
        "fork_ms": round(total, 3),
        "parent_ms": round(parent, 3),
        "child_ms": round(child, 3),
        "parent_minflt": round(pflt, 1),
        "child_minflt": round(cflt, 1),
    }


def _loop(n: int, zp: Any) -> dict[str, Any]:
    # no ``tempfile`` here: it would map what the fork base leaves out (``shutil``, ...)
    where = "/tmp/fork-floor-%d" % os.getpid()
    os.makedirs(where, exist_ok=True)
    ours, theirs = socket.socketpair()
    feeder = os.fork()
    if feeder == 0:  # the feeder is a grandchild: its exit is not one the loop reaps
        ours.close()
        if os.fork() == 0:
            _feeder(theirs, n, where)
        os._exit(0)
    os.waitpid(feeder, 0)
    theirs.close()

    def child(self: Any, fd: int, report: str | None, pipe: Any) -> None:
        if pipe is not None:
            os.write(pipe[1], b"\0D\n")
        os._exit(0)

    zp._WarmProcess._child = child
    forker = zp._WarmProcess(ours, where, os.path.join(where, "registry", "owner"))
    p0, c0 = _usage(resource.RUSAGE_SELF), _usage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    serve = getattr(forker, "serve", None)
    serve() if serve is not None else zp._serve(forker)  # a tree from before ``serve``
    wall = time.perf_counter() - t0
    p1, c1 = _usage(resource.RUSAGE_SELF), _usage(resource.RUSAGE_CHILDREN)
    forker.close()
    for name in os.listdir(where):
        if name != "registry":
            os.remove(os.path.join(where, name))
    return {
        "warm_ms": round((p1[0] - p0[0]) / n * 1e3, 3),
        "warm_minflt": round((p1[1] - p0[1]) / n, 1),
        "task_ms": round((c1[0] - c0[0]) / n * 1e3, 3),
        "task_minflt": round((c1[1] - c0[1]) / n, 1),
        "tasks_per_s": round(n / wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    # not ``argparse``: its help formatter imports ``shutil`` (and ``bz2``, ``lzma``),
    # which would be in the fork base measured here
    args = {"--forks": 400, "--loop": 2000}
    words = sys.argv[1:] if argv is None else argv
    if len(words) % 2:
        print(__doc__)
        return 2
    for name, value in zip(words[::2], words[1::2], strict=True):
        if name not in args:
            print(__doc__)
            return 2
        args[name] = int(value)
    sys.path.insert(0, os.getcwd())
    from disco.node import zygote_process as zp
    from disco.node.orphans import ready_to_fork
    from disco.worker.warm import prepare

    ready_to_fork()
    zp._preload()
    zp._rehearse()
    prepare(None)
    zp._freeze()
    zp._trim_heap()
    zp._trim_fork_hooks()
    with open("/proc/self/maps") as f:
        vmas = len(f.readlines())
    with open("/proc/self/status") as f:
        anon = next(int(line.split()[1]) for line in f if line.startswith("RssAnon"))
    out: dict[str, Any] = {"vmas": vmas, "anon_kb": anon}
    if args["--forks"]:
        out.update(_forks(args["--forks"]))
    if args["--loop"]:
        out.update(_loop(args["--loop"], zp))
    with open("/proc/loadavg") as f:
        out["load"] = float(f.read().split()[0])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
