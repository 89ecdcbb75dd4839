"""Files of jobs outside the master directory's event log (master-api.md 6.6, 8.6, 10.6).

Owns writing the stored job pack (write then rename), listing the job directories of a
node's data tree for the age GC, and reading the ``(label, size)`` totals of a
``dir://`` index file (v1 directory inputs).
"""

from __future__ import annotations

import os
import time


def job_dirs(base: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    try:
        hashes = sorted(os.listdir(base))
    except OSError:
        return found
    for hh in hashes:
        if len(hh) != 2:
            continue
        try:
            names = sorted(os.listdir(os.path.join(base, hh)))
        except OSError:
            continue
        found.extend((os.path.join(base, hh, n), n) for n in names)
    return found


def write_pack(path: str, data: bytes) -> None:
    """6.6: write to ``jobfile@<hex>`` in the same directory, then rename."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s@%x" % (path, time.time_ns())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError:
        if os.path.exists(tmp):
            os.remove(tmp)  # a full disk: leave no partial copy behind
        raise


def parse_index_labels(text: str) -> tuple[tuple[int, int], ...]:
    """``(label, total size)`` per label, in order of first appearance, of an index file."""
    totals: dict[int, int] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise ValueError("invalid index line %r" % line)
        label, size = int(parts[0]), int(parts[2])
        totals[label] = totals.get(label, 0) + size
    return tuple(totals.items())
