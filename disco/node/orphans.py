"""Worker processes do not outlive the master that started them.

Owns two guards (docs/failures.md, "Master restart"):

- ``die_with_parent``: called in a new process right after ``fork`` (each process the
  zygote forks, each worker started through ``/bin/sh``: ``ready_to_fork`` first in the
  parent) or first thing after its start (the zygote itself), it asks Linux to SIGKILL
  the process when its parent dies (``PR_SET_PDEATHSIG``, kept across ``exec``), and
  kills it at once if the parent is already gone.  A SIGKILLed master thus takes its
  zygote and its workers with it.
- ``WorkerRegistry``: one empty file per live worker session under
  ``<DISCO_DATA>/.disco-workers/``, named ``<owner pid>-<owner start>-<pid>-<start>``
  (start times from ``/proc``, so a reused pid is never mistaken for ours); the tasks
  a job's warm process forks are listed in one file of that process instead,
  ``<owner pid>-<owner start>-<pid>-<start>-tasks``, lines ``+<pid> <start>`` and
  ``-<pid>`` appended as it forks and reaps them (``disco.node.zygote_process``).  Workers
  are session leaders; what they started (a ``subprocess`` of the job's code) keeps
  their session id after they die.  A starting node runtime (``reap``) kills every
  process of the sessions whose owner is dead, then forgets them.

Both are Linux-only where they need ``prctl`` or ``/proc``; elsewhere they do nothing.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

logger = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1


def _prctl() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError, ImportError):
        return None


_PRCTL: Any = None
_LOOKED_UP = False
_SIGKILL = int(signal.SIGKILL)  # a plain int: no enum conversion in the child


def ready_to_fork() -> None:
    """Look ``prctl`` up (``ctypes``) in this process, before forking a child that calls
    ``die_with_parent`` (a ``preexec_fn``): the child then only calls it.  A master
    that never does (its workers come from the zygote, which calls ``die_with_parent``
    itself after its exec) never imports ``ctypes`` (about 2 ms of its start)."""
    global _PRCTL, _LOOKED_UP
    if not _LOOKED_UP:
        _PRCTL = _prctl()
        _LOOKED_UP = True


def die_with_parent(parent: int) -> None:
    """In a child just forked by ``parent`` (which called ``ready_to_fork`` first), or a
    process just started by it: be SIGKILLed when ``parent`` dies."""
    ready_to_fork()
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGKILL)


def _stat(pid: int | str) -> tuple[int, int] | None:
    """``(session id, start time in clock ticks)`` of a live process, from ``/proc``."""
    try:
        with open("/proc/%s/stat" % pid, "rb") as f:
            text = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    # fields[0] is field 3 (state) of proc(5): session is field 6, starttime field 22
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None
    return int(fields[3]), int(fields[19])


def _task_sessions(path: str) -> dict[int, int]:
    """The sessions a warm process's registry file lists as live (``+<pid> <start>``
    when it forked a task, ``-<pid>`` when it reaped it; see
    ``disco.node.zygote_process``): session id -> its leader's start time."""
    live: dict[int, int] = {}
    try:
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return live
    for line in lines:
        fields = line[1:].split()
        if not fields or not all(f.isdigit() for f in fields):
            continue  # a line cut short by a crash
        if line[:1] == b"+" and len(fields) == 2:
            live[int(fields[0])] = int(fields[1])
        elif line[:1] == b"-":
            live.pop(int(fields[0]), None)
    return live


def start_time(pid: int) -> int:
    found = _stat(pid)
    return found[1] if found is not None else 0


class WorkerRegistry:
    """The live worker sessions of this process, as files in ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.owner = "%d-%d" % (os.getpid(), start_time(os.getpid()))
        self._files: dict[int, str] = {}

    def add(self, pid: int) -> None:
        name = "%s-%d-%d" % (self.owner, pid, start_time(pid))
        path = os.path.join(self.directory, name)
        try:
            try:
                open(path, "xb").close()  # noqa: SIM115
            except FileNotFoundError:
                os.makedirs(self.directory, exist_ok=True)
                open(path, "xb").close()  # noqa: SIM115
        except OSError as exc:  # a full disk must not stop the task
            logger.warning("cannot record worker %d: %s", pid, exc)
            return
        self._files[pid] = path

    def remove(self, pid: int) -> None:
        path = self._files.pop(pid, None)
        if path is not None:
            try:
                os.remove(path)
            except OSError:
                pass

    def reap(self) -> int:
        """Kill the sessions recorded by owners that are no longer alive; returns the
        number of processes killed."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return 0
        orphans: dict[int, int] = {}  # session id -> its leader's start time
        stale: list[str] = []
        for name in names:
            parts = name.split("-")
            tasks = len(parts) == 5 and parts[4] == "tasks"
            if tasks:
                parts = parts[:4]
            if len(parts) != 4 or not all(p.isdigit() for p in parts):
                continue
            opid, ostart, pid, start = (int(p) for p in parts)
            owner = _stat(opid)
            if owner is not None and owner[1] == ostart:
                continue  # a live master (maybe another one on this DISCO_DATA)
            if tasks:
                orphans.update(_task_sessions(os.path.join(self.directory, name)))
            else:
                orphans[pid] = start
            stale.append(name)
        killed = 0
        if orphans and os.path.isdir("/proc"):
            procs = {int(e): _stat(e) for e in os.listdir("/proc") if e.isdigit()}
            for pid, found in procs.items():
                if found is None or found[0] not in orphans or pid == os.getpid():
                    continue
                sid, started = found
                leader = procs.get(sid)
                if leader is not None and leader[1] != orphans[sid]:
                    continue  # the session id now belongs to another process's session
                if started < orphans[sid]:
                    continue
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except OSError:
                    pass
        for name in stale:
            try:
                os.remove(os.path.join(self.directory, name))
            except OSError:
                pass
        if killed:
            logger.warning("killed %d process(es) left by workers of a dead master", killed)
        return killed
