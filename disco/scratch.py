"""Scratch data directories: deleted when their master stops, so nothing in them is synced.

An ``EmbeddedMaster`` without a given ``root`` keeps all its data (store, job homes, task
outputs, index files) in a temporary directory that ``stop()`` deletes: no later master
ever reads it, so syncing its files to disk (``fsync``) buys no durability, only time
(0.5-9 ms per file on this machine's disk, several per task; more when another program
writes).  Its SQLite store already syncs nothing (``Store(durable=False)``); this module
says the same of the files the node and the workers write there.

- In the master's process: ``add(path)`` / ``remove(path)`` around the life of such a
  directory, ``holds(path)`` for the node's own files (the index files, at DONE).
- For the workers: the node puts ``DISCO_SCRATCH=<directory>`` in the environment of a
  task whose job home is in one (``worker_env``); ``synced(path)`` (``disco.fileutils``,
  ``disco.worker.taskrun``) is false for a file under it.

A master with a given root (``disco start``, ``EmbeddedMaster(root=...)``) adds nothing:
its node and workers sync as before (master-api.md 8.7).  docs/decisions.md "Scratch
data is not synced".  This module is imported by every task: keep its imports light.
"""

from __future__ import annotations

import os

#: The environment variable that names a task's scratch directory.
ENV = "DISCO_SCRATCH"

_roots: set[str] = set()  # this process's scratch directories (absolute paths)
_held: dict[str, str | None] = {}  # holds() of absolute paths, until _roots changes


def _forms(path: str | os.PathLike[str]) -> set[str]:
    """The absolute path and the real path (the same directory, as callers may name it)."""
    absolute = os.path.abspath(os.fspath(path))
    return {absolute, os.path.realpath(absolute)}


def add(path: str | os.PathLike[str]) -> None:
    """``path`` (a directory) is deleted when its master stops: do not sync under it."""
    _roots.update(_forms(path))
    _held.clear()


def remove(path: str | os.PathLike[str]) -> None:
    """Undo ``add`` (the directory is gone, or is kept from now on)."""
    _roots.difference_update(_forms(path))
    _held.clear()


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def holds(path: str | os.PathLike[str]) -> str | None:
    """The scratch directory of this process that ``path`` is in, else ``None`` (no
    system call: ``path`` is compared as an absolute path)."""
    if not _roots:
        return None
    if type(path) is str and path in _held:  # the same job home for every task of a job
        return _held[path]
    absolute = os.path.abspath(os.fspath(path))
    found = None
    for root in _roots:
        if _under(absolute, root):
            found = root
            break
    if type(path) is str and path.startswith("/"):  # absolute: no cwd in the answer
        if len(_held) >= 256:
            _held.clear()
        _held[path] = found
    return found


def worker_env(env: dict[str, str], jobhome: str) -> dict[str, str]:
    """``env`` with ``DISCO_SCRATCH`` set when ``jobhome`` is in a scratch directory (and
    without it otherwise, whatever this process inherited)."""
    root = holds(jobhome)
    if root is not None:
        env[ENV] = root
    else:
        env.pop(ENV, None)
    return env


def synced(path: str | os.PathLike[str]) -> bool:
    """In a task: should ``path`` be synced to disk?  False under ``DISCO_SCRATCH``.

    ``path`` may be relative (to the working directory, the job home)."""
    root = os.environ.get(ENV)
    if not root:
        return True
    return not _under(os.path.abspath(os.fspath(path)), root)


__all__ = ["ENV", "add", "holds", "remove", "synced", "worker_env"]
