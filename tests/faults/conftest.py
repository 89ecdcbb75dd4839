"""The fault-injection suite (issue 8, section 6): real masters and jobs, real faults.

Every test here is marked ``faults``.  ``tmpfs`` mounts small tmpfs file systems (root
only: the tests that need one are skipped with the reason where mounting is not
allowed) and unmounts them at teardown, even when the test failed.  ``fill`` fills a
disk to the last block.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import child_pids, poll_for


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.faults)


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True).returncode:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)  # busy: detach


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, int], Path]]:
    """``tmpfs(name, size_kib)``: a fresh tmpfs of that size mounted at ``tmp_path/name``."""
    mounted: list[Path] = []

    def mount(name: str, size_kib: int) -> Path:
        if os.geteuid() != 0:
            pytest.skip("a full disk needs a small tmpfs, and mounting one needs root")
        path = tmp_path / name
        path.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=%dk" % size_kib, "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            pytest.skip("mount -t tmpfs is not allowed here: %s" % done.stderr.strip())
        mounted.append(path)
        return path

    yield mount
    for path in reversed(mounted):
        _umount(path)


def fill(disk: Path, name: str = "filler") -> Path:
    """Write ``disk/name`` until the disk is full (to the last byte); return its path."""
    path = disk / name
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        for size in (1 << 20, 4096, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return path


@pytest.fixture
def no_leaked_workers() -> Iterator[None]:
    before = child_pids()
    yield
    poll_for(lambda: not (child_pids() - before), 10.0, "worker processes to exit")
