"""Full disks (issue 8, section 4): recognising "No space left on device", and which
disk a path is on and how much of it is free.  Stdlib only."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3

# What a failed attempt's text says when a disk was full (Python's OSError text for
# ENOSPC and EDQUOT, SQLite's, and the errno names C workers tend to print).
_FULL_TEXTS = (
    os.strerror(errno.ENOSPC),  # "No space left on device"
    os.strerror(errno.EDQUOT),  # "Disk quota exceeded"
    "[Errno %d]" % errno.ENOSPC,
    "ENOSPC",
    "database or disk is full",
    "disk space available. Task failed.",  # the worker's own check (disco.fileutils)
)

#: Extra free space a full node must have, beyond what the failed attempt had written,
#: before tasks start there again (so that a node does not flap between full and not).
MARGIN = 1 << 20


def is_disk_full(text: str) -> bool:
    """Does a failure text say that a disk was full?"""
    return any(marker in text for marker in _FULL_TEXTS)


def is_disk_full_error(exc: BaseException) -> bool:
    """Is ``exc`` an "out of space" error (an ``OSError`` or a SQLite error)?"""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(exc, sqlite3.Error):
        return is_disk_full(str(exc))
    return False


def mount_point(path: str) -> str:
    """The mount point of the file system holding ``path`` (or its nearest ancestor)."""
    path = os.path.abspath(path)
    while not os.path.exists(path) and os.path.dirname(path) != path:
        path = os.path.dirname(path)
    while not os.path.ismount(path):
        path = os.path.dirname(path)
    return path


def free_bytes(path: str) -> int:
    """Bytes free for an unprivileged user on the disk of ``path`` (0 if unknown)."""
    try:
        return shutil.disk_usage(mount_point(path)).free
    except OSError:
        return 0


def disk_of(path: str) -> tuple[str, int]:
    """(mount point, free bytes) of the disk holding ``path``."""
    return mount_point(path), free_bytes(path)
