"""A task attempt's outputs: the index file and the output list (master-api.md 8.6).

Owns: classifying an OUTPUT location (absolute path / local relative path / remote URL),
the index file (written and synced at DONE) ``<jobhome>/.disco/<stage>-<taskid>-<usecs>.results`` with one line
``<label> disco://<host>/disco/<host>/<hh>/<jobname>/<location> <size>`` per local
output (library.md 16.3), the per-label totals, and the ``TaskOutput`` list at DONE.
"""

from __future__ import annotations

import os
import re
import time
from typing import Literal

from disco import scratch
from disco.backends.base import TaskOutput, TaskSpec
from disco.node.jobhome import hash_dir
from disco.safenames import file_safe

# 8.6: a scheme is a run of letters, digits, "+", "-", "." followed by ":" before any "/".
_SCHEME = re.compile(r"^[A-Za-z0-9+.\-]+:")

LocationKind = Literal["absolute", "local", "remote"]

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC


def classify_location(location: str) -> LocationKind:
    """``absolute`` (invalid), ``local`` (relative to the job home) or ``remote`` (8.6)."""
    if location.startswith("//"):
        return "remote"  # a network location without a scheme
    if location.startswith("/"):
        return "absolute"
    if _SCHEME.match(location):
        return "remote"
    return "local"


class TaskOutputs:
    """Collects a task attempt's OUTPUT messages and writes its index file."""

    def __init__(self, spec: TaskSpec, jobhome: str) -> None:
        self._spec = spec
        self._jobhome = jobhome
        self._hh = hash_dir(spec.jobname)
        self._written = False  # close() wrote the index file
        self.index_name: str | None = None  # "<stage>-<taskid>-<usecs>.results"
        self._totals: dict[int, int] = {}
        self._local: list[tuple[int, str, int]] = []  # (label, disco url, size)
        self._paths: list[str] = []  # the local outputs' files, in the order of _local
        self._remote: list[tuple[int, str, int]] = []
        self._lines: list[bytes] = []  # the index file's lines, written at DONE

    def _data_url(self, scheme: str, relpath: str) -> str:
        host = self._spec.host
        return "%s://%s/disco/%s/%s/%s/%s" % (
            scheme,
            host,
            host,
            self._hh,
            self._spec.jobname,
            relpath,
        )

    def add(self, label: int, location: str, size: int) -> None:
        """Record one OUTPUT; ``ValueError`` for an absolute path (the attempt fails)."""
        kind = classify_location(location)
        if kind == "absolute":
            raise ValueError(
                "Invalid output location %r: must be relative to the job home or a URL" % location
            )
        if kind == "remote":
            self._remote.append((label, location, size))
            return
        url = self._data_url("disco", location)
        self._lines.append(b"%d %s %d\n" % (label, url.encode("utf-8"), size))
        self._local.append((label, url, size))
        self._paths.append(os.path.join(self._jobhome, location))
        self._totals[label] = self._totals.get(label, 0) + size

    def _create(self) -> int:
        # 8.6: usecs = microseconds since the epoch.  A descriptor, not a file object:
        # no buffer, no fstat and no lseek for a file written once (one per task).
        folder = os.path.join(self._jobhome, ".disco")
        stage = file_safe(self._spec.stage)  # names go into file names and URLs
        while True:
            usecs = time.time_ns() // 1000
            name = "%s-%d-%d.results" % (stage, self._spec.taskid, usecs)
            try:
                fd = os.open(os.path.join(folder, name), _CREATE, 0o666)
            except FileExistsError:  # another attempt in the same microsecond
                continue
            except FileNotFoundError:  # the job's first index file: made here
                os.makedirs(folder, exist_ok=True)
                continue
            self.index_name = name
            return fd

    def close(self) -> None:
        """Create, write, sync and close the index file, if there were local outputs
        (blocking: call it off the event loop when it syncs).  The file is created here,
        at DONE, in one go: nothing reads it before the attempt's outputs are handed
        over."""
        if not self._lines or self._written:
            return
        self._written = True
        fd = self._create()
        try:
            data = memoryview(b"".join(self._lines))
            while data:
                data = data[os.write(fd, data) :]
            if self.synced:  # not in a scratch directory (there: not synced)
                os.fsync(fd)
        finally:
            os.close(fd)

    @property
    def synced(self) -> bool:
        """Does ``close`` sync the index file (not in a scratch directory)?"""
        return scratch.holds(self._jobhome) is None

    @property
    def index_pending(self) -> bool:
        """Has ``close`` an index file to write and sync?"""
        return bool(self._lines) and not self._written

    @property
    def index_path(self) -> str | None:
        if self.index_name is None:
            return None
        return os.path.join(self._jobhome, ".disco", self.index_name)

    @property
    def local_paths(self) -> list[str]:
        """The files of the local outputs, in reporting order."""
        return list(self._paths)

    def task_outputs(self, saved: list[list[str]] | None = None) -> tuple[TaskOutput, ...]:
        """The outputs at DONE, in the order of 8.6.

        1. the ``dir://`` index with the (label, total size) list, if there were local
           outputs (with ``save_results`` each local output is listed instead as a
           ``data`` output whose replicas are its DDFS blob, ``saved[i]`` for the i-th
           local output, or its ``disco://`` URL if it was not saved);
        2. the remote outputs in reporting order (0.5 reversed them, 13.14).
        """
        outputs: list[TaskOutput] = []
        if self._local:
            if self._spec.save_results:
                for i, (label, url, size) in enumerate(self._local):
                    replicas = tuple(saved[i]) if saved is not None else (url,)
                    outputs.append(
                        TaskOutput(
                            kind="data", url=replicas[0], label=label, size=size, replicas=replicas
                        )
                    )
            else:
                assert self.index_name is not None
                labels = tuple(sorted(self._totals.items()))
                outputs.append(
                    TaskOutput(
                        kind="dir",
                        url=self._data_url("dir", ".disco/" + self.index_name),
                        label=labels[0][0],
                        size=sum(self._totals.values()),
                        labels=labels,
                    )
                )
        for label, url, size in self._remote:
            outputs.append(TaskOutput(kind="data", url=url, label=label, size=size))
        return tuple(outputs)
