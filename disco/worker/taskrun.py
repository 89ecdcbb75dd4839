"""Node side of a worker (library.md 17): ``main`` runs one task, ``start`` runs a stage
with its memory limit and profiling, and the shuffle helpers move a task's inputs to
its outputs."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Any

from disco import scratch
from disco.framing import PROTOCOL_VERSION
from disco.worker import protocol as _protocol
from disco.worker import report as _report
from disco.worker.inputs import IDedInput, Input, MergedInput, SerialInput, append_files
from disco.worker.outputs import BaseOutput, Output
from disco.worker.protocol import MessageWriter, ProtocolError, WorkerProtocol, wait_for_end

logger = logging.getLogger("disco.worker")


#: What a task no longer needs but leaves to its process's end to free (``leave_to_exit``).
_left_to_exit: list[Any] = []


def leave_to_exit(obj: Any) -> None:
    """Keep ``obj`` until this process ends instead of freeing it now.

    A task's process ends right after DONE (the node kills it, a warm-forked task leaves
    with ``os._exit``): nothing is freed then, while freeing half a million records
    object by object costs about 0.1 s of CPU in the middle of the task.  For what is
    big and no longer used at the end of a task (a stage's last sorted records).  A
    reused worker (``disco.worker.warm``) frees it after DONE, before its next task.
    """
    _left_to_exit.append(obj)


_malloc_tuned = False

#: The task of this process ended with DONE (``disco.worker.warm.may_reuse``; set
#: back by ``TaskRunner.main`` as each task starts).
task_done = False


def reset() -> None:
    """The state a task starts from (a reused worker's next task, ``disco.worker.warm``;
    after the zygote's rehearsal): what the last task left to the exit is freed now."""
    _left_to_exit.clear()


def tune_malloc() -> None:
    """glibc: a task's buffers up to 32 MiB come from the heap, and up to 64 MiB of freed
    heap stay mapped, for the next buffer to reuse (once per process; a task forked from
    a warm process inherits it).

    glibc's defaults map every buffer above its threshold (at most the size last freed:
    the next buffer of the same size is mapped again) and unmap it when freed: every
    1 MiB hunk inflated, every 8 MiB block read was new memory, 256 page faults per MiB
    (a hunk's inflate 2.3 -> 1.9 ms).  A task's process lives for one task, so memory
    kept for reuse is given back at its exit.
    """
    global _malloc_tuned
    if _malloc_tuned:
        return
    _malloc_tuned = True
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return  # not glibc
    mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD (its maximum on 64-bit)
    mallopt(-1, 64 << 20)  # M_TRIM_THRESHOLD


def set_active_task(task: Any) -> None:
    """Make ``task`` this process's ``disco.worker.active_task`` (the package attribute,
    which job code and 0.5 code read and may set)."""
    sys.modules["disco.worker"].active_task = task


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


class TaskRunner:
    """The task running half of ``disco.worker.Worker`` (run on the nodes)."""

    outputs: dict[Any, BaseOutput]
    getitem: Any  # disco.worker.Worker.getitem
    send: Any  # disco.worker.protocol.WorkerProtocol.send
    get_inputs: Any
    get_task: Any

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
        tune_malloc()
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
        set_active_task(task)
        resolved = getattr(self, "_resolved", None)  # by the job's warm process
        if resolved is None or resolved[0] is not job or not _same_items(resolved[1], jobargs):
            for key in list(self):
                self[key] = self.getitem(key, job, jobargs)
        version = "%d.%d" % sys.version_info[:2]
        if self.get("version", version) != version:
            from disco.worker.report import check_python_version

            check_python_version({"DISCO_JOB_PYTHON": str(self["version"])})

    def end(self, task: Any, job: Any, **jobargs: Any) -> None:
        """OUTPUT of each output, then MSG ``Results sent to master``: in one write (none
        of them waits for its reply), which is DONE's write too when ``main`` sends DONE
        right after with nothing but our own code between (``protocol._done_follows``)."""
        if _protocol._done_follows:  # (set by ``main``; the protocol's own ``send``)
            if _protocol._held is None:  # (the classic map may hold from its last MSG)
                _protocol._held = []  # ``hold``, inline: no other function to touch
            self.send_outputs()
            self.message("Results sent to master")
            return
        plain = getattr(type(self).send, "__func__", None) is _protocol_send
        held = plain and self.hold()
        try:
            self.send_outputs()
            self.message("Results sent to master")
        finally:
            if held:
                self.release()

    def message(self, text: str) -> None:
        """MSG ``text``: without waiting for the reply when the rate limit allows
        (``WorkerProtocol.send_msg``), unless a subclass has its own ``send``."""
        if getattr(type(self).send, "__func__", None) is _protocol_send:
            self.send_msg(text)
        else:
            self.send("MSG", text)

    # -- shuffle helpers (library.md 9.1, 17.4) --------------------------------------------
    def labelled_input_map(
        self, task: Any, inputs: Iterable[IDedInput]
    ) -> dict[Any, list[list[str]]]:
        """label -> replica lists of the inputs, index inputs expanded."""
        from collections import defaultdict

        from disco.util import read_index

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
            append_files(out, [urls[0] for urls in replicas], task)
            out.flush()
            if scratch.synced(partial):  # not in a scratch directory (disco.scratch)
                os.fsync(out.fileno())
        os.replace(partial, path)
        return path, os.path.getsize(path)

    def send_outputs(self) -> None:
        """Close every output and report it with OUTPUT ``[label, path, size]``."""
        nowait = getattr(type(self).send, "__func__", None) is _protocol_send
        for output in self.outputs.values():
            output.close()
            message = [output.label, output.path, output.size()]
            if nowait:  # the reply is OK, or the node fails the attempt and kills us
                self.send_nowait("OUTPUT", message)
            else:
                self.send("OUTPUT", message)

    @classmethod
    def main(cls) -> None:
        """Entry point on the nodes (library.md 17.1): run one task and report it.

        A failure is reported with ERROR (retried) or FATAL (kills the job), chosen by
        ``disco.worker.report.classify``; the details go to the attempt's report file.
        """
        global task_done
        task_done = False
        sys.stdout = sys.stderr = MessageWriter(cls)  # type: ignore[assignment]
        _report.reporter.start()
        task = None
        try:
            # WORKER and TASK (and, for a classic job loaded by a warm process, the
            # first INPUT) sent at once: their replies come in order (8.9).
            first = [
                ("WORKER", {"pid": os.getpid(), "version": PROTOCOL_VERSION}, False),
                ("TASK", "", True),
            ]
            if _classic_job_preloaded():
                first.append(("INPUT", ["exclude", []], True))
                _protocol._reader.prefetched_inputs = True
            cls.send_all_nowait(first)
            task = cls.task_from_reply(cls.kept_reply())
            set_active_task(task)
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
            # our own ``start`` ends with our own ``end``: its messages go with DONE
            kind = type(job.worker)
            _protocol._done_follows = (
                getattr(kind, "start", None) is TaskRunner.start
                and getattr(kind, "end", None) is TaskRunner.end
                and getattr(getattr(kind, "send", None), "__func__", None) is _protocol_send
            )
            try:
                job.worker.start(task, job, **jobargs)
            finally:
                _protocol._done_follows = False
            sys.stdout.flush()
            _report.reporter.finished()  # the node removes no report files after DONE
            cls.send("DONE")
            task_done = True
        except ProtocolError as e:
            # Nobody to report to any more.
            sys.__stderr__.write("disco worker: %s\n" % e)  # type: ignore[union-attr]
            raise SystemExit(1)
        except (Exception, SystemExit) as e:
            severity, failure = _report.classify(e, task)
            _report.reporter.failed(failure)
            cls._report("ERROR" if severity == "error" else "FATAL", failure.text())
        wait_for_end()

    @classmethod
    def _report(cls, type: str, text: str) -> None:
        try:
            sys.stdout.flush()
            cls.send(type, text)
        except Exception:
            raise SystemExit(1)


def _same_items(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same keys with the very same values (``**jobargs`` makes a new dict of the
    job's own argument objects)."""
    if len(a) != len(b):
        return False
    missing = object()
    return all(b.get(key, missing) is value for key, value in a.items())


_protocol_send = WorkerProtocol.send.__func__  # type: ignore[attr-defined]


#: ``_classic_job_preloaded()`` worked out by the warm process (``note_preloaded``).
_preloaded_classic: bool | None = None


def note_preloaded() -> None:
    """In a job's warm process, once the job is loaded: what ``_classic_job_preloaded``
    answers for every task forked from it."""
    global _preloaded_classic
    _preloaded_classic = None
    _preloaded_classic = _classic_job_preloaded()


def _classic_job_preloaded() -> bool:
    """Is this a task of a classic job (the exact classic ``Worker``) whose job a warm
    process has loaded?  Its first request after TASK is then ``INPUT ["exclude",
    []]``, and its inputs are known when it starts (never a deferred reply)."""
    if _preloaded_classic is not None:
        return _preloaded_classic
    from disco.task import _PRELOADED

    if len(_PRELOADED) != 1:
        return False
    warm = next(iter(_PRELOADED.values()))
    if warm.jobobjs is None or warm.printed:
        return False
    from disco.worker.classic.worker import Worker as ClassicWorker

    return type(getattr(warm.jobobjs[0], "worker", None)) is ClassicWorker


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


def _memory_limit_of(settings: Any = None) -> tuple[int, str]:
    """``(bytes, setting)`` of ``DISCO_WORKER_MAX_MEM`` of the job's (client's) settings
    (master-api.md 11): ``"N%"`` of RAM, or a size such as ``"512M"``; never above the
    current hard limit; ``0`` bytes for no limit."""
    import resource

    from disco.settings import DiscoSettings
    from disco.sysutil import mem_limit_bytes

    setting = (settings if settings is not None else DiscoSettings())["DISCO_WORKER_MAX_MEM"]
    nbytes = mem_limit_bytes(setting)
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if nbytes > 0 and hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    return max(nbytes, 0), str(setting)


#: ``(settings, (bytes, setting))`` worked out by ``plan_memory_limit`` in a warm process.
_planned_limit: tuple[Any, tuple[int, str]] | None = None


def plan_memory_limit(settings: Any = None) -> None:
    """In a job's warm process, before its tasks fork: work out the job's memory limit
    once, so that each task only applies it (one ``setrlimit``).  A setting that cannot
    be read is left to each task, which reports it as before."""
    global _planned_limit
    try:
        _planned_limit = (settings, _memory_limit_of(settings))
    except (ValueError, OSError, KeyError):
        _planned_limit = None


def _apply_memory_limit(settings: Any = None) -> None:
    """Limit the address space (``RLIMIT_AS``, soft and hard) to ``DISCO_WORKER_MAX_MEM``
    of the job's (client's) settings, and record it in the task's report."""
    import resource

    planned = _planned_limit
    try:
        if planned is not None and planned[0] is settings:
            nbytes, setting = planned[1]
        else:
            nbytes, setting = _memory_limit_of(settings)
        if nbytes:
            resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
    except (ValueError, OSError, KeyError) as e:
        logger.warning("DISCO_WORKER_MAX_MEM not applied: %s", e)
        return
    if nbytes:
        _report.reporter.memory_limit(nbytes, setting)
