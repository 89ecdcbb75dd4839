"""The DDFS section of ``docs/benchmarks.md`` (``bench_report.build_report`` calls it).

Record: ``disco/ddfs.json`` written by ``benchmarks/ddfs_bench.py`` (via ``run.py``).
"""

from __future__ import annotations

import os
from typing import Any

import bench_report as br


def load_ddfs(results: str) -> dict[str, Any] | None:
    """The DDFS figures of the run, or ``None`` when it had no DDFS benchmark."""
    return br.load_json(os.path.join(results, br.OURS, "ddfs.json"))


#: issue 13: push with 3 replicas at least this fraction of ``dd conv=fdatasync`` / 3
PUSH_TARGET = 0.8
#: issue 13: ``DDFS.chunk`` at least this many MB/s
CHUNK_TARGET_MBPS = 50.0


def ddfs_targets(d: dict[str, Any] | None) -> tuple[list[str], list[str]]:
    """The DDFS rows of the targets table, and why they are not met."""
    if not d:
        return [], []
    rows, why = [], []
    push, dd = d.get("push_MBps"), d.get("dd_fdatasync_MBps")
    r = push / (dd / d.get("replicas", 3)) if push and dd else None
    ok = None if r is None else r >= PUSH_TARGET
    rows.append(
        "| DDFS push, %d replicas >= %.1f× `dd conv=fdatasync` / %d, same run | push %s MB/s, "
        "dd %s MB/s (%s× dd/%d) | %s |"
        % (
            d.get("replicas", 3),
            PUSH_TARGET,
            d.get("replicas", 3),
            br.fmt(push, 1),
            br.fmt(dd, 1),
            "%.2f" % r if r else "–",
            d.get("replicas", 3),
            br._status(ok),
        )
    )
    if ok is False:
        why.append(
            "DDFS push: %.2f× dd/3 (load average %s before the push; the serving process "
            "used %s s of CPU, the pushing one %s s). The three replicas go to one disk, "
            "and the client and the three nodes share the machine's cores; see the DDFS "
            "notes below."
            % (
                r,
                br.fmt(d.get("load_average_before"), 1),
                br.fmt(d.get("push_server_cpu_s")),
                br.fmt(d.get("push_client_cpu_s")),
            )
        )
    chunk = d.get("chunk_MBps")
    ok = None if chunk is None else chunk >= CHUNK_TARGET_MBPS
    rows.append(
        "| `DDFS.chunk` >= %d MB/s | %s MB/s | %s |"
        % (CHUNK_TARGET_MBPS, br.fmt(chunk, 1), br._status(ok))
    )
    if ok is False:
        why.append(
            "DDFS chunk: %s MB/s. Pickling each line and zlib (level 2, the record format's) "
            "take the client's CPU; see the DDFS notes below." % br.fmt(chunk, 1)
        )
    return rows, why


def ddfs_section(d: dict[str, Any] | None, out: list[str]) -> None:
    """Append the DDFS section (nothing when the run had none)."""
    if not d:
        return
    size = br.human_bytes(d.get("size_bytes"))
    out.append("## DDFS throughput")
    out.append("")
    out.append(
        "`benchmarks/ddfs_bench.py`: a master with %d local nodes (localhost, 127.0.0.2, "
        "127.0.0.3: one machine, one disk) in a separate process, `DDFS_BLOB_REPLICAS = %d`. "
        "`push` uploads a %s file of random bytes (so %d × %s is written to disk), `pull` "
        "reads it back to the end, `chunk` re-encodes the word-count corpus (%s) into "
        "record blobs. MB/s counts file bytes (10^6 bytes), once per operation. The disk "
        "is measured in the same run with `dd if=/dev/zero bs=1M` of the same size, once "
        "through the page cache and once with `conv=fdatasync`."
        % (
            d.get("nodes", 3),
            d.get("replicas", 3),
            size,
            d.get("replicas", 3),
            size,
            br.human_bytes(d.get("chunk_input_bytes")),
        )
    )
    if d.get("push_server_cpu_s") is not None:
        out.append("")
        out.append(
            "CPU during the push: %s s in the process serving the three nodes' uploads "
            "(%s s per GB written), %s s in the pushing process; load average %s before it."
            % (
                br.fmt(d.get("push_server_cpu_s")),
                br.fmt(d.get("push_server_cpu_s_per_GB")),
                br.fmt(d.get("push_client_cpu_s")),
                br.fmt(d.get("load_average_before"), 1),
            )
        )
    out.append("")
    out.append("| operation | seconds | MB/s | ÷ dd (page cache) | ÷ dd (fdatasync) |")
    out.append("|---|---:|---:|---:|---:|")
    out.append("| `dd` (page cache) | | %s | 1 | |" % br.fmt(d.get("dd_cache_MBps"), 1))
    out.append("| `dd conv=fdatasync` | | %s | | 1 |" % br.fmt(d.get("dd_fdatasync_MBps"), 1))
    for op, what in (
        ("push", "`DDFS.push`, 3 replicas"),
        ("pull", "`DDFS.pull`"),
        ("chunk", "`DDFS.chunk`, 3 replicas"),
    ):
        out.append(
            "| %s | %s | %s | %s | %s |"
            % (
                what,
                br.fmt(d.get(op + "_s")),
                br.fmt(d.get(op + "_MBps"), 1),
                br.fmt(d.get(op + "_vs_dd_cache"), 3),
                br.fmt(d.get(op + "_vs_dd_fdatasync"), 3),
            )
        )
    out.append("")
