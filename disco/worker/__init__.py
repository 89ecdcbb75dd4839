"""The base ``Worker``, ``Params``, the input/output classes and the worker protocol.

Client side (library.md 9.1): a ``Worker`` is the dict of job parameters that builds the
job pack's jobdict, jobenvs and jobhome (a zip with the job's module source, the files
and modules it needs, and the launcher ``bin/disco-worker``).

Node side (library.md 17.1): ``python -m disco.worker`` runs ``Worker.main()``, which
speaks the worker protocol (master-api.md 8) over the process's real stderr (requests)
and stdin (replies), gets its TASK, unpickles ``(job, jobargs)`` from the job pack and
calls ``job.worker.start(task, job, **jobargs)``.  What a stage does is up to the
subclasses (``disco.worker.classic.worker``, ``disco.worker.pipeline.worker``).

This module is imported at the start of every task: keep its imports light.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from disco.error import DataError, DiscoError
from disco.worker import report as _report

logger = logging.getLogger(__name__)

DISCO_WORKER_MAX_TIME = 24 * 60 * 60
#: The worker gives up waiting for a reply after this many seconds (master-api.md 8.8).
REPLY_TIMEOUT = 3 * DISCO_WORKER_MAX_TIME
#: Protocol version sent in WORKER (master-api.md 8.3).
PROTOCOL_VERSION = "1.1"
#: The launcher in every job home; ``jobdict['worker']`` (docs/architecture.md).
LAUNCHER_PATH = "bin/disco-worker"
LAUNCHER = b'#!/bin/sh\nexec "${DISCO_WORKER_PYTHON:-python3}" -m disco.worker "$@"\n'

#: The task this process runs (set by ``Worker.main``); schemes use it for locality.
active_task: Any = None


class ProtocolError(DiscoError):
    """The master's side of the worker protocol broke (EOF, garbage, timeout)."""


# -- protocol I/O (master-api.md 8.2) ------------------------------------------------------
class _ReplyReader:
    """Reads ``<TYPE> SP <LEN> SP <JSON> LF`` replies from a file descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, deadline: float) -> None:
        import select

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProtocolError("No reply from the master in %d seconds" % REPLY_TIMEOUT)
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if ready:
            data = os.read(self.fd, 65536)
            if not data:
                raise ProtocolError("The master closed the worker's stdin")
            self.buf += data

    def _until_space(self, deadline: float, limit: int) -> bytes:
        while True:
            pos = self.buf.find(b" ", 0, limit + 1)
            if pos >= 0:
                field = bytes(self.buf[:pos])
                del self.buf[: pos + 1]
                return field
            if len(self.buf) > limit:
                raise ProtocolError("Malformed reply from the master: %r" % bytes(self.buf[:40]))
            self._fill(deadline)

    def read(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        rtype = self._until_space(deadline, 10).decode("ascii", "replace")
        size = self._until_space(deadline, 20)
        if not size.isdigit():
            raise ProtocolError("Malformed reply length from the master: %r" % size)
        need = int(size) + 1
        while len(self.buf) < need:
            self._fill(deadline)
        body = bytes(self.buf[:need])
        del self.buf[:need]
        if body[-1:] != b"\n":
            raise ProtocolError("Reply from the master is not terminated by a newline")
        try:
            return rtype, json.loads(body[:-1].decode("utf-8"))
        except ValueError as e:
            raise ProtocolError("Reply from the master is not JSON: %s" % e)


_reader = _ReplyReader(0)
_lock = threading.RLock()


class MessageWriter:
    """Stands in for ``sys.stdout``/``sys.stderr`` in a task: printed text becomes MSG.

    Text is sent when a line is complete (or on ``flush``), so ``print("a", "b")`` is
    one message ``a b`` rather than 0.5's one message per ``write`` call (which made
    a single print cost several of the few messages per second the master allows).
    Blank messages are dropped.
    """

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.pending = ""

    def write(self, data: str | bytes) -> int:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        self.pending += text
        if "\n" in text:
            complete, _, self.pending = self.pending.rpartition("\n")
            self._send(complete)
        return len(data)

    def _send(self, text: str) -> None:
        if text.strip():
            self.worker.send("MSG", text.strip())

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        text, self.pending = self.pending, ""
        self._send(text)


# -- parameters ----------------------------------------------------------------------------
class Params:
    """Attribute bag passed as ``params`` to job functions (library.md 9.2).

    Pickled with the job, so each task gets its own copy: changes made in one task
    are not seen by other tasks.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:
        items = ", ".join("%s=%r" % kv for kv in sorted(self.__dict__.items()))
        return "Params(%s)" % items


# -- inputs (library.md 9.3) ---------------------------------------------------------------
class IDedInput(tuple):
    """One input of the task: ``(worker, id, label)``; replicas come from the master."""

    def __new__(cls, args: Iterable[Any], replicas: list[Any] | None = None) -> IDedInput:
        self = super().__new__(cls, args)
        # The replicas of the INPUT reply that announced this input spare the first
        # ``replicas`` round trip; later accesses ask the master again (fresh order).
        self._fresh = replicas
        return self

    @property
    def worker(self) -> Any:
        return self[0]

    @property
    def id(self) -> int:
        return self[1]

    @property
    def label(self) -> int | str:
        return self[2]

    @property
    def replicas(self) -> list[tuple[int, str]]:
        fresh, self._fresh = self._fresh, None
        if fresh is not None:
            return fresh
        return self.worker.get_input(self.id)

    @property
    def locations(self) -> list[str]:
        return [url for _, url in self.replicas]

    @property
    def isindex(self) -> bool:
        locations = self.locations
        return bool(locations) and all(url.startswith("dir://") for url in locations)

    def unavailable(self, tried: Iterable[int]) -> list[tuple[int, str]] | None:
        """Report failed replicas (INPUT_ERR); replicas to retry with, or ``None``."""
        rtype, payload = self.worker.exchange("INPUT_ERR", [self.id, sorted(tried)])
        if rtype == "RETRY":
            return [(rid, url) for rid, url in payload]
        return None

    def __repr__(self) -> str:
        return "IDedInput(id=%r, label=%r)" % (self.id, self.label)


def local_path(url: str, task: Any = None) -> str | None:
    """The local file behind ``url`` on this node, or ``None`` (master-api.md 9.3)."""
    task = task if task is not None else active_task
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url if url.startswith("/") else None
    if scheme == "file":
        return rest
    if task is None or scheme not in ("disco", "dir", "http"):
        return None
    netloc, _, path = rest.partition("/")
    host, _, port = netloc.partition(":")
    if host != task.host:
        return None
    if scheme == "http" and str(port) != str(task.disco_port):
        return None
    top, _, below = path.partition("/")
    if top == "ddfs":
        return os.path.join(task.ddfs_data, below)
    return os.path.join(task.disco_data, below)


class ReplicaIter:
    """Replica URLs of one input to try in turn: a local one first, then random ones.

    When every replica has been tried, the failures are reported with INPUT_ERR and
    the iteration stops.
    """

    def __init__(self, input: Any) -> None:
        self.input = input
        self.used: set[int] = set()
        self.checked_local = False
        self.left = 0  # replicas not tried yet, after the one returned last

    def _replicas(self) -> dict[int, str]:
        if isinstance(self.input, IDedInput):
            return dict(self.input.replicas)
        if isinstance(self.input, str):
            return {0: self.input}
        return dict(enumerate(self.input))

    def __iter__(self) -> ReplicaIter:
        return self

    def __next__(self) -> str:
        import random

        replicas = self._replicas()
        unused = [rid for rid in replicas if rid not in self.used]
        self.left = max(0, len(unused) - 1)
        if not self.checked_local:
            self.checked_local = True
            for rid in unused:
                path = local_path(replicas[rid])
                if path is not None and os.path.exists(path):
                    self.used.add(rid)
                    return replicas[rid]
        if unused:
            rid = random.choice(unused)
            self.used.add(rid)
            return replicas[rid]
        if isinstance(self.input, IDedInput) and self.used:
            self.input.unavailable(self.used)
        raise StopIteration

    next = __next__  # 0.5's spelling (Python 2 iterators)


class InputIter:
    """Records of one input, failing over between replicas.

    A ``DataError`` while opening or reading a replica moves on to the next one and
    skips the records already delivered; with no replica left it raises
    ``DataError("Exhausted all available replicas...")`` whose ``replica_errors`` are
    the errors of every replica (``disco.retryable`` tells from them whether a retry
    can help).  While other replicas are left, a replica that does not answer gets
    ``FAILOVER_SECONDS`` (``comm.failover``) instead of the full HTTP retries.  After
    any other exception (e.g. ``Wait``) the next ``next()`` reopens the same replica
    and resumes.
    """

    #: What a dead replica may cost before the next one is tried (issue 11.6).
    FAILOVER_SECONDS = 1.0

    def __init__(self, input: Any, task: Any = None, open: Any = None, start: int = 0) -> None:
        self.input = input
        self.urls = ReplicaIter(input)
        self.open = open or Input.default_opener(task)
        self.delivered = start
        self.records: Iterator[Any] | None = None
        self.source: Any = None
        self.last_error: str | None = None
        self.last_exception: DataError | None = None
        self.finished = False
        self.url: str | None = None
        self.retry: str | None = None
        self.errors: list[DataError] = []  # one per failed replica

    def __iter__(self) -> InputIter:
        return self

    def _close(self) -> None:
        source, self.source, self.records = self.source, None, None
        close = getattr(source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # closing a failed replica must not hide the failure
                logger.debug("closing %r failed", source, exc_info=True)

    def _failed(self, error: DataError, trace: str) -> None:
        self.last_error = trace
        self.last_exception = error
        self.errors.append(error)
        self._close()

    def _failover(self) -> Any:
        """Short HTTP patience while another replica is left (``comm.failover``)."""
        import contextlib

        from disco import comm

        if self.urls.left > 0:
            return comm.failover(self.FAILOVER_SECONDS)
        return contextlib.nullcontext()

    def _open_next(self) -> None:
        import itertools
        import traceback

        while self.records is None:
            url, self.retry = self.retry, None
            try:
                url = url or next(self.urls)
            except StopIteration:
                msg = "Exhausted all available replicas"
                last = self.last_exception
                if last is not None:
                    same = last.url == self.url
                    msg += ", last error was: %s" % (last.msg if same else last)
                    if same and last.code is not None:
                        msg += " (%s)" % last.code
                # The URL tried last, and the error it gave as the cause (its traceback).
                error = DataError(msg, self.url or self.input)
                error.replica_errors = list(self.errors)  # type: ignore[attr-defined]
                raise error from last
            self.url = url
            _report.reporter.reading(url)
            try:
                with self._failover():
                    self.source = self.open(url)
                    records = iter(self.source)
                    # Resume after the last record delivered from an earlier replica.
                    for _ in itertools.islice(records, self.delivered):
                        pass
                self.records = records
            except DataError as e:
                self._failed(e, traceback.format_exc())
            except BaseException:
                self._close()
                self.retry = url
                raise

    def __next__(self) -> Any:
        while not self.finished:
            if self.records is None:
                self._open_next()
            records = self.records
            assert records is not None
            try:
                if self.urls.left > 0:
                    with self._failover():
                        record = next(records)
                else:  # the common case, one replica: no context per record
                    record = next(records)
            except StopIteration:
                self.finished = True
                self._close()
                break
            except DataError as e:
                import traceback

                self._failed(e, traceback.format_exc())
                continue
            except BaseException:
                self._close()
                self.retry = self.url
                raise
            self.delivered += 1
            return record
        raise StopIteration

    next = __next__  # 0.5's spelling (Python 2 iterators)


class Input:
    """An iterable over one input with replica failover; waits and retries on ``Wait``."""

    def __init__(self, input: Any, task: Any = None, **kwds: Any) -> None:
        self.input = input
        self.task = task
        self.kwds = kwds

    @classmethod
    def default_opener(cls, task: Any) -> Any:
        def open(url: str) -> Any:
            from disco import schemes

            return schemes.open(url, task=task)

        return open

    def input_iter(self, input: Any) -> InputIter:
        return InputIter(input, task=self.task, **self.kwds)

    def _records(self, input: Any) -> Iterator[Any]:
        from disco.fileutils import Wait

        if isinstance(input, Input):  # e.g. SerialInput over prepare_input_map's inputs
            yield from input
            return
        records = self.input_iter(input)
        while True:
            try:
                # delegated: no bytecode of this generator runs per record
                yield from records
                return
            except Wait as w:  # the iterator stays usable: go on where it stopped
                time.sleep(getattr(w, "retry_after", 1))

    def __iter__(self) -> Iterator[Any]:
        return self._records(self.input)


class SerialInput(Input):
    """Records of a list of inputs, one input after the other."""

    def __iter__(self) -> Iterator[Any]:
        for input in self.input:
            yield from self._records(input)


class ParallelInput(Input):
    """Records of a list of inputs, round robin; inputs that must ``Wait`` are parked."""

    BUSY_TIMEOUT = 1

    def __iter__(self) -> Iterator[Any]:
        from disco.fileutils import Wait

        iters = [self.input_iter(input) for input in self.input]
        while iters:
            progressed = False
            for it in list(iters):
                try:
                    record = next(it)
                except StopIteration:
                    iters.remove(it)
                    progressed = True
                    continue
                except Wait:
                    continue
                progressed = True
                yield record
            if iters and not progressed:
                time.sleep(self.BUSY_TIMEOUT)


class MergedInput(ParallelInput):
    """The sorted merge of inputs that are each sorted."""

    def __iter__(self) -> Iterator[Any]:
        import heapq

        return heapq.merge(*(self._records(input) for input in self.input))


# -- outputs (library.md 9.4) --------------------------------------------------------------
class BaseOutput:
    """An output file ``(path, type, label)`` of the task (label ``None`` means 0)."""

    def __init__(self, path_type_label: tuple[str, str, Any]) -> None:
        self.path, self.type, label = path_type_label
        self.label = 0 if label is None else int(label)

    def size(self) -> int:
        return os.path.getsize(self.path)

    def close(self) -> None:
        pass


class Output(BaseOutput):
    """An output written through ``open(path)`` (default ``disco.fileutils.DiscoOutput``)."""

    def __init__(self, path_type_label: tuple[str, str, Any], open: Any = None) -> None:
        super().__init__(path_type_label)
        if open is None:
            from disco.fileutils import DiscoOutput

            open = DiscoOutput
        self.file = open(self.path)

    def close(self) -> None:
        self.file.close()


# -- the worker ----------------------------------------------------------------------------
def input_settings(job: Any) -> Any:
    """The settings ``tag://`` job inputs are expanded with: the job's settings, with
    ``DISCO_MASTER`` set to the job's own master when it was given (0.5 used the
    settings' master even for ``Job(master=...)``, docs/decisions.md)."""
    settings = getattr(job, "settings", None)
    master = getattr(job, "__dict__", {}).get("_master")
    if not master:
        return settings
    from disco.settings import DiscoSettings

    if not isinstance(settings, DiscoSettings):
        settings = DiscoSettings()
    return settings.with_values(DISCO_MASTER=str(master))


def profile_key(uid: str) -> str:
    """The OOB key of a task's profile: ``profile-<uid>``, made a valid key (a stage
    name may hold any character; long ones keep their start and a hash)."""
    import hashlib

    from disco.oob import MAX_KEY_LENGTH
    from disco.task import safe_name

    key = safe_name("profile-%s" % uid)
    if len(key) > MAX_KEY_LENGTH:
        digest = hashlib.md5(key.encode()).hexdigest()[:8]
        key = "%s-%s" % (key[: MAX_KEY_LENGTH - 9], digest)
    return key


class Worker(dict):
    """A worker: the dict of job parameters, and the code that runs tasks on the nodes.

    Parameters are resolved by ``getitem``: the ``run()`` keyword arguments first,
    then attributes of the job, then this dict.  Subclasses define
    ``jobpack_version`` and what each stage does.
    """

    stderr = sys.stderr  # the real stderr: the protocol channel to the master

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.defaults())
        self.update(kwargs)
        self.outputs: dict[Any, BaseOutput] = {}

    def defaults(self) -> dict[str, Any]:
        return {
            "save_results": False,
            "profile": False,
            "required_files": {},
            "required_modules": None,
        }

    def getitem(self, key: str, job: Any, jobargs: dict[str, Any], default: Any = None) -> Any:
        """``jobargs[key]``, else ``job.<key>`` if the job has it, else ``self[key]``."""
        if key in jobargs:
            return jobargs[key]
        if hasattr(job, key):
            return getattr(job, key)
        return self.get(key, default)

    @property
    def bin(self) -> str:
        """The worker executable inside the job home (the launcher)."""
        return LAUNCHER_PATH

    # -- building the job pack (client side) ---------------------------------------------
    def get_modules(self, job: Any, **jobargs: Any) -> list[Any]:
        """Modules the job's functions use (``disco.worker.modutil.find_modules``)."""
        from disco import job as _job

        functions = _job.job_functions(self, job, jobargs)
        return _job.find_job_modules(functions, _job.job_module_path(job))

    def jobdict(self, job: Any, **jobargs: Any) -> dict[str, Any]:
        from disco.settings import DiscoSettings

        settings = getattr(job, "settings", None) or DiscoSettings()
        return {
            "prefix": self.getitem("name", job, jobargs),
            "save_results": bool(self.getitem("save_results", job, jobargs, False)),
            "save_info": self.getitem("save_info", job, jobargs, "ddfs"),
            "scheduler": self.getitem("scheduler", job, jobargs, {}),
            "owner": self.getitem("owner", job, jobargs, settings["DISCO_JOB_OWNER"]),
            "worker": self.bin,
        }

    def jobenvs(self, job: Any, **jobargs: Any) -> dict[str, str]:
        from disco.job import pythonpath

        version = self.getitem("version", job, jobargs) or "%d.%d" % sys.version_info[:2]
        return {
            "PYTHONPATH": pythonpath(sys.path),
            "LD_LIBRARY_PATH": "lib",
            _report.PYTHON_ENV: str(version),
        }

    def jobhome(self, job: Any, **jobargs: Any) -> bytes:
        jobzip = self.jobzip(job, **jobargs)
        jobzip.close()
        return jobzip.dumps()

    def jobzip(self, job: Any, **jobargs: Any) -> Any:
        """The job home zip (a ``disco.fileutils.DiscoZipFile``, still open)."""
        from disco.job import build_jobzip
        from disco.worker import shipping

        modules = self.getitem("required_modules", job, jobargs)
        if modules is None:
            # Found automatically and stored back, so the nodes import the same list.
            modules = self["required_modules"] = self.get_modules(job, **jobargs)
        # Every user module the pickled job refers to goes to lib/ (disco.worker.shipping);
        # this also fails here, before submission, if part of the job cannot be pickled.
        shipped = shipping.collect(job, jobargs)
        return build_jobzip(
            self, job, self.getitem("required_files", job, jobargs, {}), modules, shipped
        )

    # -- running a task (node side) --------------------------------------------------------
    def input(self, task: Any, merged: bool = False, **kwds: Any) -> Input:
        if merged:
            return MergedInput(self.get_inputs(), task=task, **kwds)
        return SerialInput(self.get_inputs(), task=task, **kwds)

    def output(self, task: Any, label: Any = None, **kwds: Any) -> Output:
        """The task's output for ``label`` (opened on first use, then reused)."""
        if label not in self.outputs:
            self.outputs[label] = Output(task.output(label=label), **kwds)
        return self.outputs[label]  # type: ignore[return-value]

    def start(self, task: Any, job: Any, **jobargs: Any) -> None:
        """Run the task: memory limit, scratch directory, ``run`` (maybe profiled), ``end``."""
        _apply_memory_limit(getattr(job, "settings", None))
        task.makedirs()
        if self.getitem("profile", job, jobargs):
            self._profiled_run(task, job, jobargs)
        else:
            self.run(task, job, **jobargs)
        self.end(task, job, **jobargs)

    def _profiled_run(self, task: Any, job: Any, jobargs: dict[str, Any]) -> None:
        # library.md 17.8: the stats of the run go to the job's OOB tag as
        # "profile-<uid>", which Disco.profile_stats and "disco pstats" merge.
        import cProfile

        profiler = cProfile.Profile()
        try:
            profiler.runcall(self.run, task, job, **jobargs)
        finally:
            path = task.path("profile-%s" % task.uid)
            profiler.dump_stats(path)
        with open(path, "rb") as f:
            task.put(profile_key(task.uid), f.read())

    def run(self, task: Any, job: Any, **jobargs: Any) -> None:
        self.getitem(task.stage, job, jobargs)(task, job, **jobargs)

    def resolve(self, task: Any, job: Any, jobargs: dict[str, Any]) -> None:
        """On the node, before a stage runs: make ``task`` the active task, resolve every
        parameter into this dict and check the client's Python version (19.4)."""
        global active_task
        active_task = task
        for key in list(self):
            self[key] = self.getitem(key, job, jobargs)
        version = "%d.%d" % sys.version_info[:2]
        if self.get("version", version) != version:
            from disco.worker.report import check_python_version

            check_python_version({"DISCO_JOB_PYTHON": str(self["version"])})

    def end(self, task: Any, job: Any, **jobargs: Any) -> None:
        self.send_outputs()
        self.send("MSG", "Results sent to master")

    # -- shuffle helpers (library.md 9.1, 17.4) --------------------------------------------
    def labelled_input_map(
        self, task: Any, inputs: Iterable[IDedInput]
    ) -> dict[Any, list[list[str]]]:
        """label -> replica lists of the inputs, index inputs expanded."""
        from collections import defaultdict

        labelled: dict[Any, list[list[str]]] = defaultdict(list)
        for input in inputs:
            locations = input.locations
            if not locations:
                continue
            if all(url.startswith("dir://") for url in locations):
                for label, url, _size in read_index(locations[0], task):
                    if input.label in ("all", label):
                        labelled[label].append([url])
            else:
                labelled[input.label].append(locations)
        return labelled

    def concat_input(
        self, task: Any, output_label: int, replicas: list[list[str]]
    ) -> tuple[str, int]:
        """Concatenate the first replica of each input into the label's output file."""
        path = task.output_path(output_label)
        partial = path + ".partial"
        with open(partial, "wb") as out:
            for urls in replicas:
                copy_url(urls[0], out, task)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
        return path, os.path.getsize(path)

    def send_outputs(self) -> None:
        """Close every output and report it with OUTPUT ``[label, path, size]``."""
        for output in self.outputs.values():
            output.close()
            self.send("OUTPUT", [output.label, output.path, output.size()])

    # -- protocol (master-api.md 8) -----------------------------------------------------------
    @classmethod
    def exchange(cls, type: str, payload: Any = "") -> tuple[str, Any]:
        """Send one message; return the reply's ``(type, payload)``."""
        body = json.dumps(payload)
        data = ("%s %d %s\n" % (type, len(body.encode("utf-8")), body)).encode("utf-8")
        with _lock:
            out = getattr(cls.stderr, "buffer", None)
            if out is not None:
                out.write(data)
                out.flush()
            else:
                cls.stderr.write(data.decode("utf-8"))
                cls.stderr.flush()
            if type in ("DONE", "ERROR", "FATAL"):
                return "", None  # no reply: the master kills the worker (8.7)
            return _reader.read(REPLY_TIMEOUT)

    @classmethod
    def send(cls, type: str, payload: Any = "") -> Any:
        """Send one message and return the reply's payload."""
        return cls.exchange(type, payload)[1]

    @classmethod
    def get_task(cls) -> Any:
        from disco.task import Task

        return Task(**cls.send("TASK"))

    @classmethod
    def get_inputs(
        cls, done: bool = False, exclude: list[int] | None = None
    ) -> Iterator[IDedInput]:
        """The task's inputs as they become known (INPUT ``["exclude", seen]`` polls).

        Unlike 0.5, the ``exclude`` list is not shared between calls, so
        ``this_inputs()`` after a task read its inputs still lists them all.
        """
        seen = list(exclude or ())
        while True:
            flag, inputs = cls.send("INPUT", ["exclude", seen])
            for input_id, _status, label, replicas in inputs:
                if input_id in seen:
                    continue
                seen.append(input_id)
                if label != "all":
                    label = int(label)
                yield IDedInput(
                    (cls, input_id, label), replicas=[(rid, url) for rid, url in replicas]
                )
            if flag == "done":
                return

    @classmethod
    def get_input(cls, id: int) -> list[tuple[int, str]]:
        """Fresh replicas ``[(replica_id, url)]`` of input ``id``."""
        from disco.fileutils import Wait

        _flag, inputs = cls.send("INPUT", ["include", [id]])
        for input_id, status, _label, replicas in inputs:
            if input_id != id:
                continue
            if status == "busy":
                raise Wait()
            if status == "failed":
                raise DataError("Can't handle broken input", id)
            return [(rid, url) for rid, url in replicas]
        raise DataError("The master did not return input %s" % id, id)

    @classmethod
    def main(cls) -> None:
        """Entry point on the nodes (library.md 17.1): run one task and report it.

        A failure is reported with ERROR (retried) or FATAL (kills the job), chosen by
        ``disco.worker.report.classify``; the details go to the attempt's report file.
        """
        global active_task
        sys.stdout = sys.stderr = MessageWriter(cls)  # type: ignore[assignment]
        _report.reporter.start()
        task = None
        try:
            cls.send("WORKER", {"pid": os.getpid(), "version": PROTOCOL_VERSION})
            task = active_task = cls.get_task()
            export_task_settings(task)
            _report.check_python_version()
            try:
                job, jobargs = task.jobobjs
            except Exception as e:
                raise _report.JobCodeError(
                    "the job's code could not be loaded on node %s; modules that are "
                    "imported in ways Disco cannot see can be listed in required_modules"
                    % task.host
                ) from e
            job.worker.start(task, job, **jobargs)
            sys.stdout.flush()
            cls.send("DONE")
        except ProtocolError as e:
            # Nobody to report to any more.
            sys.__stderr__.write("disco worker: %s\n" % e)  # type: ignore[union-attr]
            raise SystemExit(1)
        except (Exception, SystemExit) as e:
            severity, failure = _report.classify(e, task)
            _report.reporter.failed(failure)
            cls._report("ERROR" if severity == "error" else "FATAL", failure.text())
        _wait_for_end()

    @classmethod
    def _report(cls, type: str, text: str) -> None:
        try:
            sys.stdout.flush()
            cls.send(type, text)
        except Exception:
            raise SystemExit(1)


def export_task_settings(task: Any, environ: Any = None) -> None:
    """Give the task's own master and ports to Disco clients made inside the task.

    Workers start without Disco settings (master-api.md 8.1), so ``DDFS()``, ``Disco()``
    or a ``disco://`` URL resolved in job code would use the defaults (port 8989).  The
    TASK reply names the master and the ports: they become the defaults of this process
    (values the job's environment sets are kept).
    """
    environ = os.environ if environ is None else environ
    values = {
        "DISCO_MASTER": task.master,
        "DISCO_PORT": task.disco_port,
        "DDFS_PUT_PORT": task.put_port,
    }
    for key, value in values.items():
        if value:
            environ.setdefault(key, str(value))


def _wait_for_end() -> None:
    """After DONE/ERROR/FATAL the master kills us; leave only if stdin closes."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass


def _apply_memory_limit(settings: Any = None) -> None:
    """Limit the address space to ``DISCO_WORKER_MAX_MEM`` of the job's (client's)
    settings (master-api.md 11): ``"N%"`` of RAM, or a size such as ``"512M"``."""
    from disco.settings import DiscoSettings
    from disco.sysutil import set_mem_limit

    try:
        setting = (settings if settings is not None else DiscoSettings())["DISCO_WORKER_MAX_MEM"]
        nbytes = set_mem_limit(setting)
    except (ValueError, OSError, KeyError) as e:
        logger.warning("DISCO_WORKER_MAX_MEM not applied: %s", e)
        return
    if nbytes:
        _report.reporter.memory_limit(nbytes, str(setting))


def read_index(url: str | list[str], task: Any = None) -> Iterator[tuple[int, str, int]]:
    """``(label, url, size)`` lines of an index file (library.md 16.3); local files directly."""
    if not isinstance(url, str):
        url = url[0]
    path = local_path(url, task)
    if path is None or url.endswith(".gz") or not os.path.exists(path):
        from disco import util

        yield from util.read_index(url)
        return
    from disco.worker.task_io import parse_index_line

    with open(path, "rb") as f:
        for line in f:
            entry = parse_index_line(line, url)
            if entry is not None:
                yield entry


def copy_url(url: str, out: Any, task: Any = None, bufsize: int = 1 << 20) -> None:
    """Append the bytes behind ``url`` to the binary file ``out``."""
    import shutil

    path = local_path(url, task)
    if path is not None and os.path.exists(path):
        with open(path, "rb") as f:
            shutil.copyfileobj(f, out, bufsize)
        return
    from disco import schemes

    source = schemes.open(url, task=task)
    try:
        if hasattr(source, "read"):
            shutil.copyfileobj(source, out, bufsize)
        else:
            for chunk in source:
                out.write(chunk)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
