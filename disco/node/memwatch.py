"""The per-task memory limit across a worker's whole process group.

Each Python task process limits its own address space (``RLIMIT_AS``, from
``DISCO_WORKER_MAX_MEM``), which its children inherit each for themselves.  A task that
starts several processes can still use more than the limit in total.  ``MemoryWatch``
samples, about once a second, the resident memory of every process group it watches
(one ``/proc`` scan for all of them) and calls the group's ``on_exceeded`` callback once
when the sum goes over the group's limit; the runner then kills the group and reports
"exceeded N MB".  Nothing is scanned while no group is watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE")


def group_rss(pgids: set[int]) -> dict[int, int]:
    """Resident bytes of all processes of each process group in ``pgids``."""
    totals = dict.fromkeys(pgids, 0)
    try:
        entries = os.listdir("/proc")
    except OSError:
        return totals
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                fields = f.read().rsplit(b")", 1)[-1].split()
        except OSError:
            continue
        # after "(comm)": state ppid pgrp ... rss is field 24 of stat (index 21 here)
        if len(fields) > 21:
            pgid = int(fields[2])
            if pgid in totals:
                totals[pgid] += int(fields[21]) * _PAGE
    return totals


@dataclass
class Watched:
    limit: Callable[[], int | None]  # bytes, or None while unknown (read lazily)
    on_exceeded: Callable[[int, int], None]  # (rss, limit)
    fired: bool = False


class MemoryWatch:
    """Watches process groups of one event loop; ``watch`` returns an ``unwatch``.

    Sampled by a loop timer, armed while a group is watched and cancelled when the last
    one goes: nothing is left scheduled (no task) on a loop whose attempts have ended."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.groups: dict[int, Watched] = {}
        self._timer: asyncio.TimerHandle | None = None

    def watch(
        self, pgid: int, limit: Callable[[], int | None], on_exceeded: Callable[[int, int], None]
    ) -> Callable[[], None]:
        self.groups[pgid] = Watched(limit, on_exceeded)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._tick)

        def unwatch() -> None:
            self.groups.pop(pgid, None)
            if not self.groups and self._timer is not None:
                self._timer.cancel()
                self._timer = None

        return unwatch

    def _tick(self) -> None:
        self._timer = None
        try:
            self.check()
        finally:
            if self.groups and self._timer is None:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(self.interval, self._tick)

    def check(self) -> None:
        limits = {}
        for pgid, watched in self.groups.items():
            limit = watched.limit() if not watched.fired else None
            if limit:
                limits[pgid] = limit
        if not limits:
            return
        for pgid, rss in group_rss(set(limits)).items():
            watched = self.groups.get(pgid)
            if watched is not None and rss > limits[pgid] and not watched.fired:
                watched.fired = True
                with contextlib.suppress(Exception):
                    watched.on_exceeded(rss, limits[pgid])


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, MemoryWatch]] = (
    weakref.WeakKeyDictionary()
)


def memory_watch(interval: float = 1.0) -> MemoryWatch:
    """The ``MemoryWatch`` of the running event loop sampling every ``interval`` s."""
    per_loop = _watches.setdefault(asyncio.get_running_loop(), {})
    if interval not in per_loop:
        per_loop[interval] = MemoryWatch(interval)
    return per_loop[interval]
