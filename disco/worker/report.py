"""The task's side of failure reporting: what the worker knows when a task fails.

Keeps the attempt's report file (``disco.failure``) up to date with the input being
read and the memory limit, turns an exception into a ``Failure`` of the right class
(with the traceback of the job's own code, Disco's frames left out), and points
``faulthandler`` at ``<report>.crash`` so a segfault leaves a Python traceback behind.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from disco.error import DataError, OutputError, PythonVersionError
from disco.failure import REPORT_ENV, Failure, write_report
from disco.retryable import input_error_permanent
from disco.worker.payload import dump_payload

_DISCO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep

#: Environment variable of job packs: the client's ``major.minor`` Python version.
PYTHON_ENV = "DISCO_JOB_PYTHON"


class JobCodeError(Exception):
    """The job's pickled code could not be loaded on this node."""


class _Reporter:
    def __init__(self) -> None:
        self.path: str | None = None
        self.state: dict[str, Any] = {}
        self._crash_file: Any = None
        self._fd: int | None = None  # the report file, rewritten in place

    def start(self, environ: Any = None) -> None:
        """Read the report path from the environment; send crash tracebacks there."""
        environ = os.environ if environ is None else environ
        self.path = environ.get(REPORT_ENV) or None
        self.state = {}
        self._fd = None
        if _channel is not None:  # forked from a warm process that keeps the files
            if self.path is None:
                import faulthandler

                faulthandler.disable()
            return
        if _crash_fd is not None:  # forked from a warm process: the handler is set up
            self._start_prepared(_crash_fd)
            return
        if self.path is None:
            return
        import faulthandler

        try:
            self._crash_file = open(self.path + ".crash", "w")  # noqa: SIM115 - kept open
            faulthandler.enable(self._crash_file)
        except OSError:
            self._crash_file = None

    def _start_prepared(self, fd: int) -> None:
        """``faulthandler`` already writes to ``fd`` (``prepare_crash_handler``): put the
        crash file there, or turn the handler off as a process without a report has it."""
        if self.path is not None:
            try:
                crash = os.open(self.path + ".crash", _CREATE, 0o666)
            except OSError:
                pass
            else:
                if crash != fd:
                    os.dup2(crash, fd, inheritable=False)
                    os.close(crash)
                return
        import faulthandler

        faulthandler.disable()

    def _save(self) -> None:
        """Rewrite the report file in place: one file per attempt, made once (every new
        file costs an inode, whose allocation on ext4 without a journal scans past every
        recently deleted one).  A reader that meets a half-written file reads ``{}``
        and looks again (``disco.failure.read_report``); the failure, read after the
        task ends, is written whole (``failed``)."""
        if self.path is None:
            return
        try:
            body = dump_payload(self.state)
            if _channel is not None:
                _send(b"\0" + body + b"\n")
                return
            if self._fd is None:
                self._fd = os.open(self.path, _CREATE, 0o666)
            view, offset = memoryview(body), 0
            while offset < len(body):
                offset += os.pwrite(self._fd, view[offset:], offset)
            os.ftruncate(self._fd, len(body))
        except (OSError, TypeError, ValueError):
            pass  # reporting never fails the task

    def reading(self, url: str) -> None:
        """The task opened ``url`` (an input replica)."""
        if self.state.get("input") != url:
            self.state["input"] = url
            self._save()

    def memory_limit(self, nbytes: int, setting: str) -> None:
        self.state["max_mem"] = nbytes
        self.state["max_mem_setting"] = setting
        if _channel is None or _channel_limit != (nbytes, setting):
            self._save()  # (else the warm process has it: the limit it planned)

    def finished(self) -> None:
        """The task succeeded: remove its report files (the node does not look)."""
        if self.path is None:
            return
        if _channel is not None:  # the warm process writes no file for this attempt
            _send(FINISHED)
            return
        # (a handler prepared by the warm process stays on: the process ends soon, and
        # a crash before that writes to a removed file)
        if self._crash_file is not None:
            import faulthandler

            faulthandler.disable()
            self._crash_file.close()
            self._crash_file = None
        self._close()
        for suffix in (".crash", ""):
            try:
                os.remove(self.path + suffix)
            except OSError:
                pass

    def failed(self, failure: Failure) -> None:
        self.state["failure"] = failure.to_json()
        self._close()
        if self.path is not None:
            write_report(self.path, self.state)  # whole, by a rename
            if _channel is not None:  # the warm process must not write over it
                _send(WRITTEN)

    def _close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
            self._fd = None


reporter = _Reporter()
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
_crash_fd: int | None = None  # set by prepare_crash_handler
#: In a task forked from a warm process: the pipe to it (``use_channel``), else None.
_channel: int | None = None
#: Channel records (``disco.node.zygote_process.TaskChannel`` reads them): a state is
#: ``\0`` + its JSON + ``\n``; these two say the task finished, or wrote its failure.
FINISHED = b"\0D\n"
WRITTEN = b"\0F\n"


#: The memory limit the warm process starts each task's report with (``use_channel``).
_channel_limit: tuple[int, str] | None = None


def use_channel(fd: int | None, limit: tuple[int, str] | None = None) -> None:
    """In a task just forked from a warm process: ``fd`` (``prepare_crash_handler``'s
    descriptor, now a pipe to the warm process) takes the report's states and any crash
    traceback; the warm process writes the report files only if the task does not
    finish (the node reads them only then), so a task that succeeds creates no file.
    ``limit``: ``(bytes, setting)`` of the memory limit the warm process puts in the
    report by itself (the one it planned), not sent again."""
    global _channel, _channel_limit
    _channel = fd
    _channel_limit = limit


def _send(record: bytes) -> None:
    view = memoryview(record)
    while view:
        view = view[os.write(_channel, view) :]  # type: ignore[arg-type]


def prepare_crash_handler() -> None:
    """In a job's warm process, before its tasks fork: enable ``faulthandler`` once, on
    a descriptor that each task then points at its own crash file (``_Reporter.start``),
    so a task sets up no signal handlers and no alternate stack of its own."""
    global _crash_fd
    import faulthandler

    if _crash_fd is None:
        fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        faulthandler.enable(fd)
        _crash_fd = fd


def check_python_version(environ: Any = None) -> None:
    """Raise ``PythonVersionError`` if the job was packed with another Python."""
    environ = os.environ if environ is None else environ
    wanted = environ.get(PYTHON_ENV)
    here = "%d.%d" % sys.version_info[:2]
    if wanted and wanted != here:
        raise PythonVersionError(
            "Python version mismatch: the job was packed with Python %s but this node "
            "runs Python %s (%s); "
            "run the job with the Python version of the nodes" % (wanted, here, sys.executable)
        )


def user_traceback(exc: BaseException, only_user: bool = False) -> str:
    """The formatted traceback of ``exc`` without Disco's own frames.

    With no frame of the job's code in it, the whole traceback, or ``""`` if
    ``only_user`` (Disco's own failures say all in their message).
    """
    import traceback

    _load_shipped_sources(exc)
    tb = traceback.TracebackException.from_exception(exc, capture_locals=False)
    chain = [tb]
    while chain[-1].__cause__ is not None or chain[-1].__context__ is not None:
        chain.append(chain[-1].__cause__ or chain[-1].__context__)  # type: ignore[arg-type]
    import sysconfig

    stdlib = os.path.join(sysconfig.get_paths()["stdlib"], "")
    user_frames = 0
    for part in chain:
        frames = [f for f in part.stack if not f.filename.startswith(_DISCO_DIR)]
        user_frames += sum(not f.filename.startswith(stdlib) for f in frames)
        if frames:
            part.stack = traceback.StackSummary.from_list(frames)
    if only_user and not user_frames:
        return ""
    return "".join(tb.format())


def _load_shipped_sources(exc: BaseException | None) -> None:
    """Give ``linecache`` the sources of the client's files that the job home holds (at
    their absolute path minus ``/``), so remote tracebacks show the lines of code."""
    import linecache

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_code.co_filename
            tb = tb.tb_next
            if name in linecache.cache or not os.path.isabs(name) or os.path.exists(name):
                continue
            shipped = os.path.join(os.getcwd(), name.lstrip(os.sep))
            try:
                with open(shipped, encoding="utf-8") as f:
                    lines = f.readlines()
            except (OSError, UnicodeDecodeError):
                continue
            linecache.cache[name] = (sum(map(len, lines)), None, lines, shipped)
        exc = exc.__cause__ or exc.__context__


def _mb(nbytes: int) -> int:
    return round(nbytes / (1 << 20))


def classify(exc: BaseException, task: Any = None) -> tuple[str, Failure]:
    """``("error" | "fatal", Failure)`` for an exception that ended the task.

    Recoverable (retried, 17.6): unreadable inputs, ``OSError`` and ``MemoryError``;
    but an input that does not exist (``disco.retryable``) is fatal.  Everything else
    is a bug or a setting that a retry would not fix: fatal.
    """
    state = reporter.state
    severity, kind = "fatal", "exception"
    exc_type, message = type(exc).__name__, str(exc)
    trace = user_traceback(exc)
    current_input = state.get("input")
    if isinstance(exc, PythonVersionError):
        kind, trace = "version", ""
    elif isinstance(exc, JobCodeError):
        kind = "code"
        cause = exc.__cause__ or exc
        exc_type, message = type(cause).__name__, "%s (%s)" % (cause, exc)
        trace = user_traceback(cause)
    elif isinstance(exc, OutputError):
        kind, trace = "output", user_traceback(exc, only_user=True)
    elif isinstance(exc, DataError):
        kind, trace = "input", user_traceback(exc, only_user=True)
        # A missing file, a 404, a host that refuses: FATAL, the job fails at once
        # (disco.retryable); a timeout, a 503, a node away: ERROR, retried.
        port = getattr(task, "disco_port", None)
        severity = "fatal" if input_error_permanent(exc, port) else "error"
        if isinstance(exc.url, str):
            current_input = exc.url
    elif isinstance(exc, MemoryError):
        severity, kind = "error", "memory"
        limit = state.get("max_mem")
        if limit:
            message = "the task exceeded %d MB, its memory limit (DISCO_WORKER_MAX_MEM=%s)" % (
                _mb(limit),
                state.get("max_mem_setting"),
            )
        else:
            message = "the task ran out of memory"
    elif isinstance(exc, SystemExit):
        kind = "exit"
        message = "sys.exit(%r) was called by the job's code" % (exc.code,)
    elif isinstance(exc, OSError):
        severity = "error"
    failure = Failure(
        kind=kind,
        exc_type=exc_type,
        exc_message=message,
        traceback=trace,
        input=current_input,
        stage=getattr(task, "stage", "") or "",
        taskid=getattr(task, "taskid", -1),
        host=getattr(task, "host", "") or "",
        jobname=getattr(task, "jobname", "") or "",
    )
    return severity, failure
