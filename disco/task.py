"""``Task``: what a worker knows about the task it runs, and ``jobdata`` (library.md 4).

A ``Task`` is built on the node from the master's TASK reply (master-api.md 8.4).  It
names the task's scratch directory and output files inside the job home and gives
access to the job pack, whose jobdata holds the pickled ``(job, jobargs)``.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9_\-@:]")
try:  # the interpreter's own md5: same digest, without an OpenSSL context per call (and
    # without ``hashlib``'s libcrypto in the memory tasks are forked from: a lean fork base)
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import md5 as _md5


class _Preloaded:
    """A job pack loaded by a warm process (``preload``) for the tasks it forks."""

    def __init__(self, jobpack: Any, jobobjs: Any, printed: str) -> None:
        self.jobpack = jobpack
        self.jobobjs = jobobjs  # None: unpickling failed; each task tries (and reports)
        self.printed = printed  # what importing the job's modules printed


_PRELOADED: dict[str, _Preloaded] = {}


def preload(jobfile: str) -> bool:
    """Load the job pack at ``jobfile`` and unpickle its ``(job, jobargs)`` in this
    process (a warm process of ``disco.node.zygote_process``), for the tasks forked
    from it; ``Task.jobpack`` and ``Task.jobobjs`` then use them.  What the job's
    modules print while they are imported is kept and printed again by each task when
    it asks for its ``jobobjs`` (a fresh process would print it then).  Returns whether
    the job's objects could be loaded (if not, each task loads them and reports the
    failure as usual)."""
    import io

    from disco.job import JobPack

    try:
        with open(jobfile, "rb") as f:
            jobpack = JobPack.load(io.BytesIO(f.read()))
        jobpack.jobdata, jobpack.jobdict, jobpack.jobenvs  # noqa: B018 - read now, once
    except Exception:
        return False
    warm = _PRELOADED[jobfile] = _Preloaded(jobpack, None, "")
    _load_objects(warm)
    from disco.worker.warm import prepare

    prepare(warm.jobobjs)
    return warm.jobobjs is not None


def _load_objects(warm: _Preloaded) -> None:
    """Unpickle the job's ``(job, jobargs)`` into ``warm`` (``None`` if that fails), and
    keep what importing the job's modules printed meanwhile."""
    import contextlib
    import io
    import pickle

    printed = io.StringIO()
    warm.jobobjs = None
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            warm.jobobjs = pickle.loads(warm.jobpack.jobdata)
            _warm_up(warm.jobobjs)
    except BaseException:
        warm.jobobjs = None
    warm.printed = printed.getvalue()


def reload_preloaded() -> None:
    """In a worker process about to run another task of its job (``disco.worker.warm``):
    the job's objects unpickled afresh, as the warm process did for the first, so that
    nothing a task changed in them (its ``params``, its worker's state) reaches the next
    task.  (The job's own modules are imported again: ``next_task`` forgot them.)"""
    for warm in _PRELOADED.values():
        _load_objects(warm)


def _warm_up(jobobjs: Any) -> None:
    """Work every task of the job would repeat, done once before the tasks fork."""
    job, jobargs = jobobjs
    warm = getattr(getattr(job, "worker", None), "warm_up", None)
    if callable(warm):
        warm(job, jobargs)


def hexhash(data: bytes | str) -> str:
    """First two hex digits of the md5 of ``data`` (UTF-8 for ``str``; master-api.md 9.1)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return _md5(data).hexdigest()[:2]


def safe_name(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_\\-@:]`` replaced by ``_``."""
    return _UNSAFE.sub("_", name)


def jobdata(*objs: Any) -> bytes:
    """Pickle ``objs`` for the job pack; functions and classes of ``__main__`` by value."""
    from disco import dPickle

    return dPickle.dumps(objs, -1)


class Task:
    """A task on a node, built from the TASK reply (all keys as keyword arguments).

    ``group`` may be given as the reply's ``[label, host]`` or as ``"<label>-<host>"``;
    it is kept as the string, with ``group_label`` (an ``int``) and ``group_host``.
    """

    def __init__(
        self,
        host: str = "",
        jobfile: str = "",
        jobname: str = "",
        master: str | None = None,
        disco_port: int | None = None,
        put_port: int | None = None,
        ddfs_data: str = "",
        disco_data: str = "",
        stage: str | None = None,
        group: Any = None,
        grouping: str | None = None,
        taskid: int = -1,
        **extra: Any,
    ) -> None:
        self.host = host
        self.jobfile = jobfile
        self.jobname = jobname
        self.master = master
        self.disco_port = disco_port
        self.put_port = put_port
        self.ddfs_data = ddfs_data
        self.disco_data = disco_data
        self.stage = stage
        self.grouping = grouping
        self.taskid = taskid
        self.group_label, self.group_host = _parse_group(group)
        self.group = "%s-%s" % (self.group_label, self.group_host)
        self.outputs: dict[Any, Any] = {}
        self.uid = "%s:%s-%s-%s-%d" % (
            _file_safe(str(stage)),
            _shorten(safe_name(self.group)),
            taskid,
            hexhash(str(time.time())),
            os.getpid(),
        )
        self._jobpack: Any = None
        self._jobobjs: Any = None
        self._taskpath: tuple[str, str] | None = None  # (uid, its taskpath)

    def __repr__(self) -> str:
        return "<Task %s:%s of %s on %s>" % (self.stage, self.taskid, self.jobname, self.host)

    # -- the job pack --------------------------------------------------------------------
    @property
    def jobpack(self) -> Any:
        """The job pack at ``jobfile`` (a ``disco.job.PackedJobPack``)."""
        if self._jobpack is None and self.jobfile in _PRELOADED:
            self._jobpack = _PRELOADED[self.jobfile].jobpack
        if self._jobpack is None:
            from disco.job import JobPack

            self._jobpack = JobPack.load(open(self.jobfile, "rb"))  # noqa: SIM115
        return self._jobpack

    @property
    def jobobjs(self) -> tuple[Any, dict[str, Any]]:
        """The unpickled ``(job, jobargs)`` of the job pack's jobdata."""
        warm = _PRELOADED.get(self.jobfile)
        if self._jobobjs is None and warm is not None and warm.jobobjs is not None:
            if warm.printed:  # what a fresh process would have printed here (MSG)
                import sys

                sys.stdout.write(warm.printed)
                sys.stdout.flush()
            self._jobobjs = warm.jobobjs
        if self._jobobjs is None:
            import pickle

            # Plain pickle: cloudpickle is imported only if the data needs it (by-value
            # functions), which keeps the start of tasks cheap.
            self._jobobjs = pickle.loads(self.jobpack.jobdata)
        return self._jobobjs

    # -- paths -------------------------------------------------------------------------
    @property
    def jobpath(self) -> str:
        """``<host>/<hh(jobname)>/<jobname>``: the job home below ``DISCO_DATA``."""
        return os.path.join(self.host, hexhash(self.jobname), self.jobname)

    @property
    def taskpath(self) -> str:
        """``<hh(uid)>/<uid>``: this attempt's scratch directory, relative to the job home."""
        uid = self.uid
        if self._taskpath is None or self._taskpath[0] is not uid:
            self._taskpath = (uid, os.path.join(hexhash(uid), uid))
        return self._taskpath[1]

    def makedirs(self) -> None:
        """Create the scratch directory (``taskpath``).

        One ``mkdir`` when its hash directory exists (all but a job's first tasks on a
        node): no ``stat`` of the hash directory first, as ``os.makedirs`` makes."""
        path = self.taskpath
        try:
            os.mkdir(path)
        except FileNotFoundError:  # the hash directory first
            os.makedirs(path, exist_ok=True)
        except FileExistsError:
            if not os.path.isdir(path):
                raise

    def path(self, name: str) -> str:
        """``taskpath/<name>``."""
        return os.path.join(self.taskpath, name)

    def url(self, name: str, scheme: str = "disco") -> str:
        """URL of file ``name`` of the scratch directory as seen from other hosts."""
        return "%s://%s/disco/%s/%s/%s" % (scheme, self.host, self.jobpath, self.taskpath, name)

    def output_filename(self, label: Any) -> str:
        """``<stage>-<group>-<label>``; ``label`` must be an ``int``."""
        if not isinstance(label, int) or isinstance(label, bool):
            raise ValueError(
                "Output label (%s : %s) must be an integer or None" % (label, type(label))
            )
        # The group host may be any URL text (raw:// data with spaces or slashes) and a
        # pipeline stage any name, so the file name uses file-safe forms of both (0.5 used
        # them verbatim and broke index lines and URLs).
        return "%s-%s-%s" % (_file_safe(self.stage), _file_safe(self.group), label)

    def output_path(self, label: Any) -> str:
        return self.path(self.output_filename(label))

    def output(self, label: Any = None, typ: str = "disco") -> tuple[str, str, int]:
        """``(path, type, label)`` of an output: the uid file for ``None``, else a partition."""
        if label is None:
            return self.path(self.uid), typ, 0
        return self.output_path(label), "part", label

    # -- out-of-band results (library.md 4, master-api.md 2.7; stored in DDFS) ---------
    def get(self, key: str) -> bytes | None:
        """The newest out-of-band value stored under ``key`` in this job's OOB tag
        (``None`` if there is no such key).  Values put by an earlier stage, or by an
        earlier task of this stage that has finished, are visible."""
        from disco import oob

        return oob.task_get(self, key)

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` (bytes) as the out-of-band result ``key`` of this job.

        ``key``: 1 to 200 characters of ``[A-Za-z0-9_\\-@:]``; a later ``put`` of the
        same key wins.
        """
        from disco.util import save_oob

        save_oob(self.master or "", self.jobname, key, value)


def is_scratch_of(name: str, taskid: int, pid: int) -> bool:
    """Is ``name`` the scratch directory (``uid``) of task ``taskid`` run by process ``pid``?

    The node runtime uses this to delete the partial outputs of a failed attempt.
    """
    parts = name.rsplit("-", 3)
    return len(parts) == 4 and parts[1] == str(taskid) and parts[3] == str(pid)


def _parse_group(group: Any) -> tuple[int | str, str]:
    """``[label, host]``, ``(label, host)`` or ``"label-host"`` -> ``(label, host)``."""
    if group is None:
        return 0, ""
    if isinstance(group, (list, tuple)):
        label, host = group
    else:
        label, _, host = str(group).partition("-")
    try:
        label = int(label)
    except (TypeError, ValueError):
        pass
    return label, host or ""


# Compiled at import: a worker forked from the zygote then never compiles it per task.
_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9_.@:\-]")


def _file_safe(group: str, limit: int = 64) -> str:
    """``group`` with characters outside ``[A-Za-z0-9_.@:-]`` replaced by ``_``, shortened
    with a hash suffix when longer than ``limit``."""
    return _shorten(_FILE_UNSAFE.sub("_", group), limit)


def _shorten(safe: str, limit: int = 64) -> str:
    """Keep file names short: raw:// hosts can be any length."""
    if len(safe) > limit:
        import hashlib

        safe = "%s_%s" % (safe[: limit - 9], hashlib.md5(safe.encode()).hexdigest()[:8])
    return safe
