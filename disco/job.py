"""Jobs on the client: ``Job``, ``SimpleJob``, ``JobChain`` and the job pack (library.md 3).

``Job.run`` asks the job's worker for the four parts of a job pack (jobdict, jobenvs,
jobhome, jobdata), packs them with ``JobPack.dumps`` (master-api.md 6.1) and submits
the bytes with ``Disco.submit``.  The worker decides what goes in each part
(``disco.worker``); the master validates the pack (``disco.master.jobpack``).
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

from disco import JOBPACK_VERSION1, JOBPACK_VERSION2
from disco.error import DiscoError, JobError
from disco.settings import DiscoSettings
from disco.task import jobdata
from disco.worker.classic import worker as classic_worker
from disco.worker.simple import Worker as SimpleWorker

__all__ = [
    "JOBPACK_VERSION1",
    "JOBPACK_VERSION2",
    "Job",
    "JobChain",
    "JobError",
    "JobPack",
    "PackedJobPack",
    "SimpleJob",
]


class Job:
    """A Disco job: the unit submitted to a master.

    :param name: the job name prefix (default: the class name); after ``run`` it is
        replaced by the unique name the master gave the job.
    :param master: a ``disco.core.Disco`` instance or a master URL (default: the
        ``DISCO_MASTER`` setting).
    :param worker: the worker that runs the tasks (default: ``self.Worker()``).
    :param settings: ``DiscoSettings`` for the client side (inputs, owner).

    Attributes of subclasses act as job parameters: a worker resolves every parameter
    from the ``run()`` keyword arguments first, then from the job object, then from
    its own defaults (``disco.worker.Worker.getitem``).  After submission the methods
    named in ``proxy_functions`` act on the job, e.g. ``job.wait()`` is
    ``job.disco.wait(job.name)``.
    """

    Worker = classic_worker.Worker
    proxy_functions = (
        "clean",
        "events",
        "kill",
        "jobinfo",
        "jobpack",
        "oob_get",
        "oob_list",
        "profile_stats",
        "purge",
        "results",
        "stageresults",
        "wait",
    )

    def __init__(
        self,
        name: str | None = None,
        master: Any = None,
        worker: Any = None,
        settings: DiscoSettings | None = None,
    ) -> None:
        self.name = name or type(self).__name__
        self.disco = master
        self.worker = worker or self.Worker()
        self.settings = settings or DiscoSettings()

    # The Disco client is created on first use and is not pickled into the job pack:
    # tasks rarely need it, and a node rebuilds it from the master URL when they do.
    @property
    def disco(self) -> Any:
        """The ``disco.core.Disco`` client of the master this job runs on."""
        client = self.__dict__.get("_disco")
        if client is None:
            from disco.core import Disco

            settings = self.__dict__.get("settings")  # its DISCO_AUTH_TOKEN, proxy
            client = self.__dict__["_disco"] = Disco(self.__dict__.get("_master"), settings)
        return client

    @disco.setter
    def disco(self, master: Any) -> None:
        from disco.core import Disco

        if isinstance(master, Disco):
            self.__dict__["_disco"] = master
            self.__dict__["_master"] = master.master
        else:
            self.__dict__["_disco"] = None
            self.__dict__["_master"] = master

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_disco"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def __getattr__(self, attr: str) -> Any:
        # Only reached when normal lookup fails; never touch instance state for other
        # names (pickle probes attributes such as __setstate__ before __dict__ is set).
        if attr in Job.proxy_functions:
            from functools import partial

            return partial(getattr(self.disco, attr), self.name)
        raise AttributeError("%r object has no attribute %r" % (type(self).__name__, attr))

    def __repr__(self) -> str:
        return "<%s %s>" % (type(self).__name__, self.name)

    def run(self, **jobargs: Any) -> Job:
        """Build the job pack from ``jobargs`` and the job's attributes, submit it.

        Returns ``self``, whose ``name`` is now the unique job name.  Submission
        errors raise ``DiscoError``.
        """
        from disco.worker.shipping import node_jobargs, pickled_jobdata

        worker = self.worker
        # Evaluated in this order (library.md 3.1): jobhome fills required_modules
        # before jobdata pickles the worker.  Building the jobhome pickles the job to
        # find the modules to ship; that same pickle is the jobdata.
        jobdict = worker.jobdict(self, **jobargs)
        check_has_inputs(jobdict, worker.getitem("input", self, jobargs))
        jobenvs = worker.jobenvs(self, **jobargs)
        jobhome = worker.jobhome(self, **jobargs)
        data = pickled_jobdata(self, jobargs) or jobdata(self, node_jobargs(jobargs))
        jobpack = JobPack(worker.jobpack_version, jobdict, jobenvs, jobhome, data)
        self.name = self.disco.submit(jobpack.dumps())
        return self


def check_has_inputs(jobdict: dict[str, Any], given: Any) -> None:
    """Refuse a job with no input at all (``DiscoError``): it would run nothing and
    succeed, which hides a mistake (issue 12; the master refuses it too)."""
    key = "inputs" if "inputs" in jobdict else "input"
    if key not in jobdict or any(jobdict[key]):
        return
    if not given:
        raise DiscoError(
            "The job has no input: give input=[...] (URLs such as file:///abs/path, "
            "http://..., raw://data, or tag://name of a DDFS tag)"
        )
    raise DiscoError("The job's inputs %s hold no data (empty tags?)" % (given,))


class SimpleJob(Job):
    """A job run by ``disco.worker.simple.Worker``: stage functions get the worker.

    Its ``map``/``reduce`` are ``fn(worker, task, **jobargs)`` (library.md 3.2, with
    the fix of 21.14: the jobdict is a complete v1 jobdict).
    """

    Worker = SimpleWorker


class JobChain(dict):
    """Jobs mapped to their inputs; jobs whose inputs are other jobs run when those
    are ready (library.md 3.3).

    Inputs may be a list of URLs, a ``Job``, or a list mixing both.
    """

    def wait(self, poll_interval: float = 1) -> JobChain:
        """Submit jobs as their inputs become ready, until every job is ready."""
        while self.walk() < len(self):
            time.sleep(poll_interval)
        return self

    def walk(self) -> int:
        """One round: submit jobs whose inputs are ready; count the ready jobs."""
        ready = 0
        for job in self:
            status = job.results()[0]
            if status == "unknown job":
                inputs = [url for group in self.inputs(job) for url in group]
                if None not in inputs:
                    job.run(input=inputs)
            elif status == "ready":
                ready += 1
            elif status != "active":
                raise job.disco.job_error(job.name, status, job)
        return ready

    def inputs(self, job: Job) -> Iterator[list[Any]]:
        """The inputs of ``job``, one list per item; ``[None]`` for a pending job."""
        items = self[job]
        if isinstance(items, (Job, str)) or not hasattr(items, "__iter__"):
            items = [items]
        for item in items:
            if isinstance(item, Job):
                status, results = item.results()
                if status in ("unknown job", "active"):
                    yield [None]
                elif status == "ready":
                    yield list(results)
                else:
                    raise item.disco.job_error(item.name, status, item)
            else:
                yield [item]

    def purge(self) -> None:
        """Purge every job of the chain."""
        for job in self:
            job.purge()


class JobPack:
    """A job pack: header, jobdict, jobenvs, jobhome (zip) and jobdata (master-api.md 6).

    ``dumps()`` gives the bytes ``Disco.submit`` posts; ``JobPack.load(file)`` reads
    one back as a ``PackedJobPack``.
    """

    MAGIC = 0xD5C0 << 16
    MAGIC_MASK = 0xFFFF << 16
    VERSION = JOBPACK_VERSION1
    HEADER_FORMAT = "!IIIII"
    HEADER_SIZE = 128

    def __init__(
        self,
        version: int,
        jobdict: dict[str, Any],
        jobenvs: dict[str, str],
        jobhome: bytes,
        jobdata: bytes,
    ) -> None:
        self.version = version
        self.jobdict = jobdict
        self.jobenvs = jobenvs
        self.jobhome = jobhome
        self.jobdata = jobdata

    @classmethod
    def header(
        cls,
        offsets: Any,
        magic: int = MAGIC,
        version: int = VERSION,
        format: str = HEADER_FORMAT,
        size: int = HEADER_SIZE,
    ) -> bytes:
        """The packed header for these four offsets, padded with NULs to ``size``."""
        return struct.pack(format, magic + version, *offsets).ljust(size, b"\0")

    def contents(self, offset: int = HEADER_SIZE) -> list[tuple[int, bytes]]:
        """``(offset, bytes)`` of jobdict, jobenvs, jobhome and jobdata, in order."""
        fields = [
            json.dumps(self.jobdict).encode("utf-8"),
            json.dumps(self.jobenvs).encode("utf-8"),
            bytes(self.jobhome),
            bytes(self.jobdata),
        ]
        out = []
        for field in fields:
            out.append((offset, field))
            offset += len(field)
        return out

    def dumps(self) -> bytes:
        """The whole job pack as bytes (master-api.md 6.1)."""
        contents = self.contents()
        offsets = [offset for offset, _ in contents]
        return self.header(offsets, version=self.version) + b"".join(f for _, f in contents)

    @classmethod
    def offsets(
        cls,
        jobfile: IO[bytes],
        magic: int = MAGIC,
        format: str = HEADER_FORMAT,
        size: int = HEADER_SIZE,
    ) -> list[int]:
        """Read and check the header of a seekable job pack file; the 4 offsets."""
        return _read_header(jobfile, magic, format, size)[1]

    @classmethod
    def load(cls, jobfile: IO[bytes]) -> PackedJobPack:
        """A ``PackedJobPack`` reading its fields lazily from ``jobfile``."""
        return PackedJobPack(jobfile)

    def __repr__(self) -> str:
        return "<%s version %s>" % (type(self).__name__, self.version)


def _read_header(jobfile: IO[bytes], magic: int, format: str, size: int) -> tuple[int, list[int]]:
    jobfile.seek(0)
    raw = jobfile.read(struct.calcsize(format))
    if len(raw) < struct.calcsize(format):
        raise DiscoError("Invalid job pack: header is truncated (%d bytes)" % len(raw))
    magic_version, *offsets = struct.unpack(format, raw)
    if magic_version & JobPack.MAGIC_MASK != magic:
        raise DiscoError("Invalid job pack: bad magic number 0x%08x" % magic_version)
    if offsets[0] != size or offsets != sorted(offsets):
        raise DiscoError("Invalid job pack: bad field offsets %s" % offsets)
    return magic_version & ~JobPack.MAGIC_MASK, offsets


class PackedJobPack(JobPack):
    """A job pack read from a file; its fields are read when first used."""

    def __init__(self, jobfile: IO[bytes]) -> None:
        self.jobfile = jobfile
        self.version, self._offsets = _read_header(
            jobfile, self.MAGIC, self.HEADER_FORMAT, self.HEADER_SIZE
        )
        self._cache: dict[int, bytes] = {}

    def _field(self, n: int) -> bytes:
        if n not in self._cache:
            start = self._offsets[n]
            self.jobfile.seek(start)
            if n + 1 < len(self._offsets):
                self._cache[n] = self.jobfile.read(self._offsets[n + 1] - start)
            else:
                self._cache[n] = self.jobfile.read()
        return self._cache[n]

    @property  # type: ignore[override]
    def jobdict(self) -> dict[str, Any]:
        return json.loads(self._field(0).decode("utf-8"))

    @property  # type: ignore[override]
    def jobenvs(self) -> dict[str, str]:
        return json.loads(self._field(1).decode("utf-8"))

    @property  # type: ignore[override]
    def jobhome(self) -> bytes:
        return self._field(2)

    @property  # type: ignore[override]
    def jobdata(self) -> bytes:
        return self._field(3)

    def contents(self, offset: int = JobPack.HEADER_SIZE) -> list[tuple[int, bytes]]:
        # Keep the stored bytes exactly (no JSON re-encoding).
        out = []
        for n in range(4):
            field = self._field(n)
            out.append((offset, field))
            offset += len(field)
        return out


# -- building the job home (used by disco.worker.Worker on the client) ---------------------
_read_cache: dict[tuple[str, int, int], bytes] = {}
_modules_cache: dict[Any, list[Any]] = {}


def _read(path: str) -> bytes:
    """File contents, cached while the file's mtime and size stay the same."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    data = _read_cache.get(key)
    if data is None:
        with open(path, "rb") as f:
            data = _read_cache[key] = f.read()
    return data


def pythonpath(paths: Iterable[str]) -> str:
    """``PYTHONPATH`` for the workers: ``lib`` (where user modules are shipped), then
    ``paths`` made relative to the job home (0.5's layout).  The client's absolute paths
    are not added: a job must run on nodes that do not share this machine's files.
    """
    relative = [p.strip("/") for p in paths]
    return ":".join(["lib", *relative])


def module_source(obj: Any) -> str | None:
    """Absolute path of the source file of the module defining ``obj`` (or ``None``)."""
    module = sys.modules.get(getattr(obj, "__module__", None) or "")
    path = getattr(module, "__file__", None)
    if not path:
        return None
    if path.endswith(".pyc"):
        import importlib.util

        try:
            path = importlib.util.source_from_cache(path)
        except ValueError:
            return None
    path = os.path.abspath(path)
    return path if os.path.isfile(path) else None


def job_module_path(job: Any) -> str | None:
    """The source of the module defining the job's class, for ``required_modules``.

    ``None`` for a class of a script's ``__main__``: it travels by value, and importing
    the script on the nodes would run it again.
    """
    if type(job).__module__ == "__main__":
        return None
    return module_source(type(job))


def _is_disco(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    return module == "disco" or module.startswith("disco.")


def job_functions(worker: Any, job: Any, jobargs: dict[str, Any]) -> list[Any]:
    """Callables among the resolved worker parameters (one level of lists/tuples).

    Disco's own functions are left out: nodes have the ``disco`` package installed.
    """
    found = []
    for key in worker:
        value = worker.getitem(key, job, jobargs)
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if callable(item) and not isinstance(item, type) and not _is_disco(item):
                found.append(item)
    return found


def _function_key(fn: Any) -> Any:
    inner = getattr(fn, "__func__", None) or getattr(fn, "func", None) or fn
    code = getattr(inner, "__code__", None)
    if code is None:
        return None
    return (getattr(inner, "__module__", None), inner.__qualname__, code.co_code, code.co_names)


def find_job_modules(functions: list[Any], job_path: str | None) -> list[Any]:
    """``find_modules`` over the job's functions, cached per functions and job module."""
    from disco.worker.modutil import find_modules

    keys = tuple(_function_key(fn) for fn in functions)
    key: Any = None
    if None not in keys:
        mtime = os.stat(job_path).st_mtime_ns if job_path else None
        key = (keys, job_path, mtime, os.environ.get("PYTHONPATH", ""))
        if key in _modules_cache:
            return list(_modules_cache[key])
    modules = list(find_modules(functions, job_path=job_path, exclude=["Task"]))
    if key is not None:
        _modules_cache[key] = modules
    return list(modules)


def build_jobzip(
    worker: Any,
    job: Any,
    required_files: Any,
    required_modules: Iterable[Any],
    shipped: dict[str, str] | None = None,
) -> Any:
    """The job home zip: the launcher, the job's and the worker's module sources (at
    their absolute paths minus the leading ``/``), ``required_files`` under ``lib/``,
    the files of ``(name, path)`` entries of ``required_modules``, and the ``shipped``
    user modules ``{name: file}`` under ``lib/`` at their package paths.
    """
    import zipfile

    from disco.jobzip import DiscoZipFile
    from disco.worker import LAUNCHER, LAUNCHER_PATH
    from disco.worker.shipping import main_script, ship_path

    jobzip = DiscoZipFile()
    written: set[str] = set()

    def add(name: str, data: bytes, mode: int = 0o644) -> None:
        if name in written:
            return
        written.add(name)
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100000 | mode) << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        jobzip.writestr(info, data)

    add(LAUNCHER_PATH, LAUNCHER, 0o755)
    # Disco's own modules are installed on the nodes; a copy in the job home would hide
    # the installed package behind a namespace package of the same name.  The running
    # script is there for the lines of remote tracebacks (disco.worker.report).
    sources = [None if _is_disco(cls) else module_source(cls) for cls in (type(job), type(worker))]
    for source in (*sources, main_script()):
        if source:
            add(source.lstrip("/"), _read(source))
    if isinstance(required_files, dict):
        for name, data in required_files.items():
            add(os.path.join("lib", name), data if isinstance(data, bytes) else data.encode())
    else:
        for path in required_files or ():
            add(os.path.join("lib", os.path.basename(path)), _read(path))
    for module in required_modules:
        if isinstance(module, (tuple, list)) and len(module) == 2 and module[1]:
            add(str(module[1]).lstrip("/"), _read(str(module[1])))
    for name, path in sorted((shipped or {}).items()):
        add(ship_path(name, path), _read(path))
    return jobzip
