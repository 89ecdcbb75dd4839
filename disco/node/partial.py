"""The partial outputs of a failed task attempt, and deleting them (issue 8, section 4).

A failed or killed attempt leaves files in the job home that nothing will ever read:
the Python worker's scratch directory ``<jobhome>/<hh(uid)>/<uid>`` (``disco.task``),
the local outputs the worker already reported with OUTPUT, and the attempt's index file.
On a full disk they are what keeps it full, so the node runtime deletes them as soon as
the attempt has ended (its processes are dead).  Outputs of finished attempts are never
touched.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable

from disco.task import is_scratch_of

_HASH_DIR = re.compile(r"^[0-9a-f]{2}$")


def scratch_dirs(jobhome: str, taskid: int, pids: Iterable[int]) -> list[str]:
    """The scratch directories of task ``taskid`` made by the worker processes ``pids``."""
    wanted = set(pids)
    found: list[str] = []
    try:
        buckets = [e.path for e in os.scandir(jobhome) if e.is_dir() and _HASH_DIR.match(e.name)]
    except OSError:
        return found
    for bucket in buckets:
        try:
            entries = list(os.scandir(bucket))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False) and any(
                is_scratch_of(entry.name, taskid, pid) for pid in wanted
            ):
                found.append(entry.path)
    return found


def _size(path: str) -> int:
    """Bytes of a file, or of every file below a directory (symlinks not followed)."""
    try:
        if not os.path.isdir(path) or os.path.islink(path):
            return os.lstat(path).st_size
    except OSError:
        return 0
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def inside(jobhome: str, path: str) -> bool:
    home = os.path.realpath(jobhome)
    return os.path.realpath(path).startswith(home + os.sep)


def remove_partial_outputs(
    jobhome: str, taskid: int, pids: Iterable[int], files: Iterable[str]
) -> int:
    """Delete the attempt's scratch directories and ``files``; return the bytes freed.

    Only paths inside ``jobhome`` are deleted (an OUTPUT location is a relative path the
    worker chose, so it could point anywhere through ``..`` or a symlink).
    """
    freed = 0
    targets = scratch_dirs(jobhome, taskid, pids)
    targets += [f for f in files if f and os.path.lexists(f)]
    for path in dict.fromkeys(targets):
        if not inside(jobhome, path):
            continue
        freed += _size(path)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.remove(path)
            except OSError:
                pass
    return freed
