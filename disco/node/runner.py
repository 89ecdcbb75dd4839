"""Run one task attempt: start the worker process and drive the protocol (master-api.md 8).

Owns: launching ``<jobhome>/<jobdict.worker>`` (8.1: ``nice -n 19`` through ``/bin/sh``,
cwd the job home, environment without Disco settings plus jobenvs plus
``DISCO_WORKER_PYTHON``, stdout and stderr merged, its own process group), answering
its requests in request order (8.3-8.6; INPUT and INPUT_ERR go to the master through
the ``TaskChannel``), the MSG rate limit (8.9), the index file of local outputs (8.6),
deleting the partial outputs of an attempt that did not finish (``disco.node.partial``),
every failure of 8.8, and killing the process group when the attempt ends or is
cancelled.  Framing and payload checks live in ``disco.node.protocol`` (sans-IO).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import re
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from disco import auth, scratch
from disco.backends.base import TaskChannel, TaskDone, TaskFailed, TaskResult, TaskSpec
from disco.failure import REPORT_ENV, Failure, read_crash, read_report, tail, trim_crash
from disco.node import protocol as p
from disco.node.jobhome import JobHomeError, safe_member_path
from disco.node.memwatch import memory_watch
from disco.node.orphans import WorkerRegistry, die_with_parent, ready_to_fork
from disco.node.outputs import TaskOutputs
from disco.node.partial import remove_partial_outputs
from disco.node.saveresults import save_outputs
from disco.node.zygote import CONSUMED, POKE, Zygote
from disco.retryable import SHELL_CANNOT_EXECUTE
from disco.settings import DiscoSettings

logger = logging.getLogger(__name__)

# 11.4: set by the 0.5 launcher; stripped from worker environments with the settings.
INTERNAL_SETTINGS = ("DISCO_SETTINGS", "DISCO_MASTER_PID", "DISCO_LOCAL_CLUSTER")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class WorkerLimits:
    """Timeouts and limits of 8.8, 8.9 and 11.5 (fields so tests can shrink them)."""

    start_timeout: float = 60.0  # job home and worker process ready (backends)
    pid_timeout: float = 30.0  # no byte at all from the worker
    message_timeout: float = 30.0  # a started message not completed
    last_words_timeout: float = 10.0  # collecting output after a broken stream
    last_words_bytes: int = 100 * 1024
    max_payload: int = p.MAX_PAYLOAD
    msg_slow: int = 5  # above this many MSGs in a second, replies are delayed
    msg_fatal: int = 10  # at this many the job is killed
    msg_delay: float = 0.2
    exit_timeout: float = 5.0  # stdout closed: how long to wait for the exit code
    mem_poll_interval: float = 1.0  # resident memory of the process group (memwatch)


def worker_environment(
    jobenvs: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """8.1: the node's environment minus every Disco setting, plus jobenvs.

    ``DISCO_WORKER_PYTHON`` is set to this interpreter: the ``bin/disco-worker``
    launcher of Python jobs runs ``python -m disco.worker`` with it.
    """
    if environ is None:
        # the same for every task of a job: kept while os.environ and jobenvs stay
        key = (tuple(jobenvs.items()), tuple(os.environ._data.items()))  # type: ignore[attr-defined]
        cached = _ENV_CACHE.get(key)
        if cached is None:
            _ENV_CACHE.clear()
            cached = _ENV_CACHE[key] = _worker_environment(jobenvs, os.environ)
        return dict(cached)
    return _worker_environment(jobenvs, environ)


_ENV_CACHE: dict[Any, dict[str, str]] = {}


def _worker_environment(jobenvs: Mapping[str, str], base: Mapping[str, str]) -> dict[str, str]:
    strip = set(DiscoSettings.defaults) | set(INTERNAL_SETTINGS)
    strip.update(name for name in base.get("DISCO_SETTINGS", "").split(",") if name)
    env = {k: v for k, v in base.items() if k not in strip}
    env.update(jobenvs)
    env["DISCO_WORKER_PYTHON"] = sys.executable
    return env


_LAUNCHER_CACHE: dict[tuple[str, float], bool] = {}


def is_standard_launcher(path: str) -> bool:
    """Is the worker executable exactly our Python launcher (so the zygote may fork it)?"""
    from disco.worker import LAUNCHER

    try:
        st = os.stat(path)
        key = (path, st.st_mtime)
        if key not in _LAUNCHER_CACHE:
            if st.st_size != len(LAUNCHER):
                return False
            with open(path, "rb") as f:
                _LAUNCHER_CACHE[key] = f.read() == LAUNCHER
        return _LAUNCHER_CACHE[key]
    except OSError:
        return False


def format_duration(seconds: float) -> str:
    """``H:MM:SS.mmm`` with unpadded hours (4.4)."""
    millis = max(0, round(seconds * 1000))
    secs, ms = divmod(millis, 1000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    return "%d:%02d:%02d.%03d" % (hours, mins, secs, ms)


def last_words(output: bytes, cap: int = 100 * 1024) -> str:
    """The error text of a worker that died or broke the stream (8.8)."""
    if not output:
        return "Worker died without output"
    text = output[:cap].decode("utf-8", "replace")
    if len(output) > cap:
        text += "..."
    return "Worker died. Last words:\n" + text


_CRASH_SIGNALS = {
    signal.SIGSEGV: "a segmentation fault",
    signal.SIGBUS: "a bus error",
    signal.SIGILL: "an illegal instruction",
    signal.SIGFPE: "a floating point exception",
    signal.SIGABRT: "an abort",
}


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return "signal %d" % sig


def exit_failure(code: int) -> Failure:
    """The failure of a worker that ended before DONE with exit status ``code``
    (negative: killed by that signal)."""
    if code < 0:
        sig = -code
        if sig in _CRASH_SIGNALS:
            return Failure(
                "segfault",
                "WorkerCrash",
                "the worker process died of signal %d (%s, %s)"
                % (sig, _signal_name(sig), _CRASH_SIGNALS[signal.Signals(sig)]),
            )
        return Failure(
            "signal",
            "WorkerKilled",
            "the worker process was killed by signal %d (%s)" % (sig, _signal_name(sig)),
        )
    return Failure(
        "exit",
        "WorkerExit",
        "the worker process exited with code %d before the task finished" % code,
    )


def jobhome_failed(exc: JobHomeError) -> TaskFailed:
    """The attempt's end when its job home could not be prepared: ``fatal`` (the job
    fails at once) when the job pack is at fault, else ``error`` (retried)."""
    failure = Failure("jobpack" if exc.permanent else "node", "JobHomeError", str(exc))
    return TaskFailed("fatal" if exc.permanent else "error", str(exc), failure)


def protocol_failure(exc: p.FramingError) -> Failure:
    """The failure of a worker whose output broke the framing of 8.2 (its reason, not
    the exit that followed)."""
    return Failure(
        "protocol",
        "ProtocolError",
        "%s: the worker wrote output that is not a protocol message (8.2)" % exc,
    )


def task_info(spec: TaskSpec, jobhome: str) -> dict[str, Any]:
    """The TASK reply payload (8.4)."""
    return {
        "taskid": spec.taskid,
        "master": spec.master,
        "disco_port": spec.disco_port,
        "put_port": spec.put_port,
        "ddfs_data": spec.ddfs_data,
        "disco_data": spec.disco_data,
        "stage": spec.stage,
        "grouping": spec.grouping,
        "group": [spec.group[0], spec.group[1]],
        "jobfile": os.path.join(jobhome, "jobfile"),
        "jobname": spec.jobname,
        "host": spec.host,
    }


async def run_worker(
    spec: TaskSpec,
    channel: TaskChannel,
    jobhome: str,
    *,
    limits: WorkerLimits = WorkerLimits(),
    environ: Mapping[str, str] | None = None,
    zygote: Zygote | None = None,
    registry: WorkerRegistry | None = None,
) -> TaskResult:
    """Run one attempt of ``spec`` in ``jobhome`` to its end (DONE, ERROR, FATAL, failure).

    Cancelling the awaiting task kills the worker's process group with SIGKILL and
    re-raises ``CancelledError``.  A misbehaving worker never raises here: it yields a
    ``TaskFailed``.  Exceptions raised by ``channel`` propagate (after the kill).
    """
    return await _Attempt(spec, channel, jobhome, limits, zygote, registry).run(environ)


Reply = Callable[[], Awaitable[bytes]]
_SLOW = object()  # _Attempt._act_now: the message needs _act
_OK = p.encode("OK", "ok")  # the constant replies, encoded once
_PONG = p.encode("OK", "pong")


def _run_until_wait(coro: Coroutine[Any, Any, None]) -> Awaitable[None] | None:
    """Run ``coro`` in place until it finishes (``None``; its exception is raised here)
    or would wait: then an awaitable that carries it on from there, for a task to await
    (what Python 3.12's eager tasks do; on 3.11 a task always starts a loop iteration
    later)."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return _Resumed(coro, waiting_on)


class _Resumed:
    """The rest of a coroutine that ``_run_until_wait`` started: awaiting it hands the
    future it waits on to the awaiting task and relays what the task sends or throws."""

    __slots__ = ("coro", "waiting_on")

    def __init__(self, coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
        self.coro = coro
        self.waiting_on = waiting_on

    def __await__(self) -> Generator[Any, Any, None]:
        coro, value = self.coro, self.waiting_on
        while True:
            try:
                sent = yield value
            except BaseException as exc:  # a cancel: to the coroutine, as a task would
                try:
                    value = coro.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = coro.send(sent)
                except StopIteration:
                    return


class _Attempt:
    """The state of one running worker: process, parser, reply queue, outputs."""

    def __init__(
        self,
        spec: TaskSpec,
        channel: TaskChannel,
        jobhome: str,
        limits: WorkerLimits,
        zygote: Zygote | None = None,
        registry: WorkerRegistry | None = None,
    ) -> None:
        self.zygote = zygote
        self.registry = registry  # live worker sessions, reaped after a master crash
        self.spec = spec
        self.channel = channel
        self.jobhome = jobhome
        self.limits = limits
        self.tag = "[%s:%d]" % (spec.stage, spec.taskid)
        self.loop = asyncio.get_running_loop()
        self.outputs = TaskOutputs(spec, jobhome)
        self.rate = p.MsgRateLimiter(limits.msg_slow, limits.msg_fatal)
        # replies not written yet, in request order: bytes (ready) or a coroutine
        # function making one (a deferred INPUT, a delayed OK; see ``_flush``)
        self.replies: deque[bytes | Reply] = deque()
        self.proc: Any = None  # asyncio.subprocess.Process or zygote.ZygoteProcess
        self.writer: asyncio.Task[None] | None = None  # writing a deferred reply and after
        self.input_closed = False  # the worker closed its input: replies are dropped
        self.started = self.loop.time()
        self.worker_pid: int | None = None
        # its process group was sent SIGKILL (_killpg), or the worker was released to its
        # warm process at DONE (``ZygoteProcess.release``): no kill at the cleanup
        self._killed = False
        # disco.failure: the worker's report file, and its last printed lines.
        stage = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.stage)
        self.report_path = os.path.join(
            jobhome, ".disco-reports", "%s-%d-%d.json" % (stage, spec.taskid, spec.attempt)
        )
        self.recent: deque[str] = deque(maxlen=20)
        self.frames = 0  # protocol messages received
        self.mem_limit: int | None = None  # the worker's DISCO_WORKER_MAX_MEM, in bytes
        self.mem_exceeded: tuple[int, int] | None = None  # (rss, limit) when stopped
        self._unwatch: Callable[[], None] = lambda: None
        self.self_registered = False  # forked by the zygote, which keeps its record
        self.parser = p.FrameParser(limits.max_payload)
        self.got_output = False  # a first byte came (8.8: pid_timeout until then)
        self.msg_started: float | None = None  # when the unfinished message began
        self.waiting_until: float | None = None  # the deadline the task reads with
        # what the read callback (``_consume``) leaves to the task, in order:
        # ("msg", message), ("result", result), ("broken", error), ("raise", exception)
        self.held: list[tuple[str, Any]] = []
        # the channel's synchronous event log (the master's own channel), else None
        self._event_now: Callable[[str], None] | None = getattr(channel, "event_now", None)

    # -- process ------------------------------------------------------------------------
    async def run(self, environ: Mapping[str, str] | None) -> TaskResult:
        worker = safe_member_path(self.jobhome, self.spec.worker)
        if worker is None:  # the same on every node: the job fails at once
            text = "Invalid worker path %r" % self.spec.worker
            return TaskFailed("fatal", text, Failure("jobpack", "JobHomeError", text))
        env = scratch.worker_env(worker_environment(self.spec.jobenvs, environ), self.jobhome)
        if self.spec.auth_token:  # the worker's own requests (DDFS, OOB) must pass
            env[auth.TOKEN_SETTING] = self.spec.auth_token
        try:
            reports = os.path.dirname(self.report_path)
            if not os.path.isdir(reports):  # one stat for the tasks after the first
                os.makedirs(reports, exist_ok=True)
            env[REPORT_ENV] = self.report_path
        except OSError as exc:
            logger.warning("no failure report for %s: %s", self.tag, exc)
        if self.zygote is not None and self.zygote.alive and is_standard_launcher(worker):
            try:
                self.proc = await self.zygote.spawn(
                    self.jobhome,
                    env,
                    jobfile=os.path.join(self.jobhome, "jobfile"),
                    registry=self.registry,
                )
                self.self_registered = self.registry is not None
            except OSError as exc:
                logger.warning("zygote start failed, starting the worker normally: %s", exc)
        if self.proc is None:
            try:
                # 8.1: via a shell, niced, its own session so the whole group can be killed.
                ready_to_fork()  # prctl looked up here: the forked child only calls it
                self.proc = await asyncio.create_subprocess_exec(
                    "/bin/sh",
                    "-c",
                    'exec nice -n 19 "$0"',
                    worker,
                    cwd=self.jobhome,
                    env=env,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=functools.partial(die_with_parent, os.getpid()),  # orphans
                )
            except OSError as exc:
                return TaskFailed("error", "Could not start worker %s: %s" % (worker, exc))
        self.started = self.loop.time()
        if self.registry is not None and not self.self_registered:
            self.registry.add(self.proc.pid)
        logger.debug("%s %s: worker pid %d started", self.spec.jobname, self.tag, self.proc.pid)
        self._unwatch = memory_watch(self.limits.mem_poll_interval).watch(
            self.proc.pid, self._read_mem_limit, self._over_memory
        )
        result: TaskResult | None = None
        try:
            result = await self._drive()
        finally:
            await self._cleanup(done=isinstance(result, TaskDone))
            if not isinstance(result, TaskDone):  # failed or killed: nothing will read them
                freed = await asyncio.to_thread(self._remove_partial_outputs)
                if isinstance(result, TaskFailed) and freed:
                    result = dataclasses.replace(result, partial_bytes=freed)
        return result

    def _remove_partial_outputs(self) -> int:
        """Delete what this attempt wrote (the worker's processes are dead by now)."""
        pids = {pid for pid in (self.worker_pid, getattr(self.proc, "pid", None)) if pid}
        files = self.outputs.local_paths + [self.outputs.index_path or ""]
        try:
            freed = remove_partial_outputs(self.jobhome, self.spec.taskid, pids, files)
        except OSError as exc:  # never let cleaning up hide why the attempt ended
            logger.warning("%s: partial outputs not deleted: %s", self.tag, exc)
            return 0
        if freed:
            logger.info("%s: deleted %d bytes of partial outputs", self.tag, freed)
        return freed

    async def _cleanup(self, done: bool = False) -> None:
        assert self.proc is not None
        self._unwatch()
        if not self._killed:  # after DONE: already killed (or released), no second kill
            self._killpg()
        if self.writer is not None:
            self.writer.cancel()
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        if self.proc.returncode is None:
            try:
                async with asyncio.timeout(5.0):
                    await self.proc.wait()
            except TimeoutError:
                logger.warning("worker pid %d did not die after SIGKILL", self.proc.pid)
        if not done:  # after DONE our Python worker has removed its report files
            # after the exit: a warm process writes an unfinished task's files before it
            # reports the exit, also when the node gave up on the task first
            for suffix in ("", ".crash", ".tmp"):
                try:
                    os.remove(self.report_path + suffix)
                except OSError:
                    pass
        if self.registry is not None and not self.self_registered:
            self.registry.remove(self.proc.pid)
        if self.writer is not None:
            await asyncio.gather(self.writer, return_exceptions=True)

    def _killpg(self) -> None:
        # 8.7: the worker and its children are SIGKILLed; the group is ours (setsid).
        assert self.proc is not None
        self._killed = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    async def _exit_code(self) -> int:
        """The worker's exit status; negative when a signal killed it."""
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), self.limits.exit_timeout)
        except TimeoutError:  # closed its output but keeps running
            self._killpg()
            return await self.proc.wait()

    # -- failure reports (disco.failure) ---------------------------------------------------
    def _describe(self, failure: Failure, output: bytes = b"") -> Failure:
        """``failure`` completed with the task's identity and what the node saw."""
        report = read_report(self.report_path)
        failure.stage, failure.taskid = self.spec.stage, self.spec.taskid
        failure.host, failure.attempt = self.spec.host, self.spec.attempt + 1  # for people
        failure.jobname = self.spec.jobname
        if failure.input is None and isinstance(report.get("input"), str):
            failure.input = report["input"]
        if not failure.traceback:
            failure.traceback = trim_crash(read_crash(self.report_path)).strip()
        lines = list(self.recent)
        if output:
            lines.append(output[-8192:].decode("utf-8", "replace"))
        if lines and not failure.output_tail:
            failure.output_tail = tail("\n".join(lines))
        return failure

    def _reported(self, kind: Any, text: str) -> TaskFailed:
        """ERROR/FATAL: the worker's own report if it wrote one, else its text as is."""
        failure = Failure.from_json(read_report(self.report_path).get("failure"))
        if failure is None:
            return TaskFailed(kind, text)
        failure = self._describe(failure)
        return TaskFailed(kind, failure.text(), failure)

    def _read_mem_limit(self) -> int | None:
        if self.mem_limit is None:
            limit = read_report(self.report_path).get("max_mem")
            self.mem_limit = limit if isinstance(limit, int) and limit > 0 else None
        return self.mem_limit

    def _over_memory(self, rss: int, limit: int) -> None:
        """The process group uses more than the task's limit: stop it (memwatch)."""
        self.mem_exceeded = (rss, limit)
        self._killpg()

    def _memory_failure(self) -> Failure:
        assert self.mem_exceeded is not None
        rss, limit = self.mem_exceeded
        setting = read_report(self.report_path).get("max_mem_setting", "")
        return Failure(
            "memory",
            "MemoryError",
            "the task exceeded %d MB, its memory limit (DISCO_WORKER_MAX_MEM=%s): its "
            "processes used %d MB and were stopped" % (limit >> 20, setting, rss >> 20),
        )

    async def _exit_failed(
        self, code: int, output: bytes, broken: p.FramingError | None = None
    ) -> TaskFailed:
        await self._warn("Worker crashed! (exit code: %d)" % (128 - code if code < 0 else code))
        severity: Any = "error"
        if self.mem_exceeded:
            failure = self._memory_failure()
        elif broken is not None and code == 0:
            # a clean exit after output that is not the protocol: the output is the
            # fault (a crash with a non-zero code is reported as the crash)
            failure = protocol_failure(broken)
        elif code in SHELL_CANNOT_EXECUTE and not self.frames:
            # 8.1: /bin/sh could not execute the worker: the job home is broken
            severity = "fatal"
            failure = Failure(
                "jobpack",
                "WorkerStartError",
                "the worker %r could not be started (exit code %d of /bin/sh)"
                % (self.spec.worker, code),
            )
        else:
            failure = exit_failure(code)
        failure = self._describe(failure, output)
        text = failure.text()
        if not failure.output_tail:
            text += "\nWorker died without output"
        return TaskFailed(severity, text, failure)

    # -- reading -----------------------------------------------------------------------
    async def _read(self, deadline: float | None) -> bytes | None:
        """The next chunk of output (``b""`` at EOF), ``None`` once ``deadline`` passes.

        Raises what the reply writer raised (a failing channel, handed to the stream by
        ``_writer_done``), so that it is not lost.  The replies ready so far are written
        first (``_flush``).
        """
        assert self.proc is not None and self.proc.stdout is not None
        self._flush()
        try:
            if deadline is None:
                return await self.proc.stdout.read(_CHUNK)
            # a cancelled read loses nothing: the bytes stay in the stream's buffer
            timeout = asyncio.timeout_at(deadline)
            try:
                async with timeout:
                    return await self.proc.stdout.read(_CHUNK)
            except TimeoutError:
                if timeout.expired():
                    return None
                raise
        except ConnectionResetError:
            # the worker ended with replies it had not read yet (it pipelines:
            # disco.worker.protocol.send_nowait): its end of the stream
            return b""

    async def _drive(self) -> TaskResult:
        """Read and answer the worker's messages until the attempt ends.

        A stdout with a ``consumer`` (the zygote's ``WorkerOutput``) hands what arrives
        while this task waits for output to ``_consume``, in the loop's read callback:
        the messages that need no wait are answered there, and this task wakes only for
        the others (``self.held``) or a deadline."""
        assert self.proc is not None
        parser = self.parser = p.FrameParser(self.limits.max_payload)
        stdout = self.proc.stdout
        fast = hasattr(stdout, "consumer")
        if fast:
            stdout.consumer = self._consume
        try:
            return await self._drive_frames(parser)
        finally:
            if fast:
                stdout.consumer = None

    async def _drive_frames(self, parser: p.FrameParser) -> TaskResult:
        while True:
            if self.held:  # what the read callback left to this task, in order
                held, self.held = self.held, []
                for kind, item in held:
                    if kind == "broken":
                        return await self._broken(item)
                    if kind == "result":
                        return item
                    if kind == "raise":
                        raise item
                    result = await self._act(item)
                    if result is not None:
                        return result
            try:
                while (frame := parser.next_frame()) is not None:
                    result = await self._handle(frame)
                    if result is not None:
                        return result
            except p.FramingError as exc:
                return await self._broken(exc)
            self._track_message(parser)
            self.waiting_until = self._deadline()
            chunk = await self._read(self.waiting_until)
            if chunk is POKE:
                continue
            if chunk is None:
                deadline = self._deadline()  # the read callback may have moved it on
                if deadline is None or self.loop.time() < deadline:
                    continue
                if not self.got_output:
                    return TaskFailed(
                        "error",
                        "Worker did not send its PID in %g seconds" % self.limits.pid_timeout,
                    )
                return TaskFailed("error", "Worker stuck in the middle of a message")
            if not chunk:
                return await self._crashed(parser.unparsed)
            self.got_output = True
            parser.feed(chunk)

    def _track_message(self, parser: p.FrameParser) -> None:
        if not parser.in_message:
            self.msg_started = None
        elif self.msg_started is None:
            self.msg_started = self.loop.time()

    def _deadline(self) -> float | None:
        """8.8: the first byte within ``pid_timeout``, a started message within
        ``message_timeout``; no timeout between messages."""
        if not self.got_output:
            return self.started + self.limits.pid_timeout
        if self.msg_started is not None:
            return self.msg_started + self.limits.message_timeout
        return None

    def _consume(self, data: bytes) -> object:
        """The read callback's part (``WorkerOutput.consumer``; this task waits in
        ``_read``): parse ``data``, answer each message that needs no wait, and stop at
        the first one that does (or ends the attempt), which is held for this task with
        the bytes after it.

        No coroutine of the channel runs here (outside any task: a remote channel's
        HTTP client needs its task): a MSG is answered here only when the channel logs
        events at once (``event_now``, the master's own channel).  Whatever this raises
        is held for the task, which raises it (never lost in the loop's handler)."""
        parser = self.parser
        self.got_output = True
        held = self.held
        try:
            parser.feed(data)
            while not held and (frame := parser.next_frame()) is not None:
                self.frames += 1
                try:
                    msg = p.decode_message(frame)
                except p.InvalidMessage as exc:
                    held.append(("result", self._invalid(exc)))
                    break
                if isinstance(msg, p.Msg):
                    if self._event_now is None:
                        held.append(("msg", msg))
                    else:
                        result = self._msg_now(msg)
                        if result is not None:
                            held.append(("result", result))
                    continue
                result = self._act_now(msg)
                if result is _SLOW:
                    held.append(("msg", msg))
                elif result is not None:
                    held.append(("result", result))
            self._track_message(parser)
            self._flush()
        except p.FramingError as exc:
            held.append(("broken", exc))
        except Exception as exc:
            held.append(("raise", exc))
        if held:
            return POKE
        deadline, waiting = self._deadline(), self.waiting_until
        if deadline is not None and (waiting is None or deadline < waiting):
            return POKE  # a message begun: the task waits with its deadline now
        return CONSUMED

    async def _crashed(self, unparsed: bytes) -> TaskResult:
        return await self._exit_failed(await self._exit_code(), unparsed)

    async def _broken(self, exc: p.FramingError) -> TaskResult:
        # 8.8: collect up to 100 KiB more for up to 10 s, then fail with the last words.
        if hasattr(self.proc.stdout, "consumer"):
            self.proc.stdout.consumer = None  # every byte from now on is read here
        await self._warn(str(exc))
        collected = bytearray(exc.unparsed)
        deadline = self.loop.time() + self.limits.last_words_timeout
        exited = False
        while len(collected) < self.limits.last_words_bytes:
            chunk = await self._read(deadline)
            if chunk is None:
                break
            if not chunk:
                exited = True
                break
            collected += chunk
        if not exited:
            await self._warn("Worker did not exit properly after error")
            failure = self._describe(protocol_failure(exc))
            words = last_words(bytes(collected), self.limits.last_words_bytes)
            return TaskFailed("error", "%s\n%s" % (failure.text(), words), failure)
        return await self._exit_failed(await self._exit_code(), bytes(collected), exc)

    async def _warn(self, text: str) -> None:
        self._flush()
        await self.channel.event("WARNING: %s %s" % (self.tag, text))

    # -- messages ----------------------------------------------------------------------
    async def _handle(self, frame: p.Frame) -> TaskResult | None:
        """Act on one message; a result ends the attempt."""
        self.frames += 1
        try:
            msg = p.decode_message(frame)
        except p.InvalidMessage as exc:
            return self._invalid(exc)
        return await self._act(msg)

    def _invalid(self, exc: p.InvalidMessage) -> TaskFailed:
        failure = self._describe(Failure("protocol", "ProtocolError", str(exc)))
        return TaskFailed("fatal", str(exc), failure)

    def _act_now(self, msg: p.WorkerMessage) -> Any:
        """Act on a message that needs no wait: ``None``, or a result that ends the
        attempt; ``_SLOW`` for a message that needs ``_act`` (may wait).  The message
        classes are final dataclasses: their exact type picks the branch."""
        kind = type(msg)
        if kind is p.WorkerHello:
            self.worker_pid = msg.pid
            self.replies.append(_OK)
        elif kind is p.TaskRequest:
            self.replies.append(p.encode("TASK", task_info(self.spec, self.jobhome)))
        elif kind is p.InputRequest:
            ready = self._input_now(msg) if self._in_order_now() else None
            if ready is None:
                return _SLOW
            self.replies.append(ready)
        elif kind is p.Msg or kind is p.Done or kind is p.InputError:
            return _SLOW
        elif kind is p.Output:
            try:
                self.outputs.add(msg.label, msg.location, msg.size)
            except ValueError as exc:
                return TaskFailed("error", str(exc))
            except OSError as exc:
                return TaskFailed("error", "Could not write the index file: %s" % exc)
            self.replies.append(_OK)
        elif kind is p.Error:
            return self._reported("error", msg.message)
        elif kind is p.Fatal:
            return self._reported("fatal", msg.message)
        elif kind is p.Ping:
            self.replies.append(_PONG)  # 13.6
        return None

    async def _act(self, msg: p.WorkerMessage) -> TaskResult | None:
        """Act on one decoded message; a result ends the attempt."""
        result = self._act_now(msg)
        if result is not _SLOW:
            return result  # type: ignore[no-any-return]
        kind = type(msg)
        if kind is p.Msg:
            if self._event_now is not None:
                return self._msg_now(msg)
            return await self._on_msg(msg)
        if kind is p.Done:
            return await self._done()
        if kind is p.InputRequest:
            self.replies.append(lambda: self._input_reply(msg))
        elif kind is p.InputError:
            self.replies.append(lambda: self._input_err_reply(msg))
        return None

    def _msg_now(self, msg: p.Msg) -> TaskResult | None:
        """MSG (8.9) through the channel's ``event_now``: the event logged, the reply
        queued (delayed above the rate limit); or the result that ends the attempt (at
        the fatal rate)."""
        assert self._event_now is not None
        verdict, count = self.rate.arrive(self.loop.time())
        if verdict == "fatal":
            return TaskFailed("fatal", p.behaving_badly(count))
        self._flush()
        self._event_now("MSG: %s %s" % (self.tag, msg.text))
        self._msg_reply(msg, verdict)
        return None

    async def _on_msg(self, msg: p.Msg) -> TaskResult | None:
        verdict, count = self.rate.arrive(self.loop.time())
        if verdict == "fatal":
            return TaskFailed("fatal", p.behaving_badly(count))
        self._flush()
        await self.channel.event("MSG: %s %s" % (self.tag, msg.text))
        self._msg_reply(msg, verdict)
        return None

    def _msg_reply(self, msg: p.Msg, verdict: str) -> None:
        self.recent.extend(msg.text.splitlines()[-20:])
        if verdict == "slow":
            delay = self.limits.msg_delay

            async def slow_ok() -> bytes:
                await asyncio.sleep(delay)  # 8.9: delays accumulate in reply order
                return _OK

            self.replies.append(slow_ok)
        else:
            self.replies.append(_OK)

    def _in_order_now(self) -> bool:
        """Would a reply made now be made in its turn (no deferred reply before it)?"""
        return self.writer is None and all(isinstance(r, bytes) for r in self.replies)

    def _input_now(self, msg: p.InputRequest) -> bytes | None:
        """The INPUT reply if the channel can give it without waiting (the master's own
        channel, ``AttemptChannel.inputs_now``), else ``None``."""
        now = getattr(self.channel, "inputs_now", None)
        if now is None:
            return None
        reply = now(msg.mode, list(msg.ids))
        if reply is None:
            return None
        flag, entries = reply
        return p.encode("INPUT", [flag, [entry.to_json() for entry in entries]])

    async def _input_reply(self, msg: p.InputRequest) -> bytes:
        flag, entries = await self.channel.get_inputs(msg.mode, list(msg.ids))
        return p.encode("INPUT", [flag, [entry.to_json() for entry in entries]])

    async def _input_err_reply(self, msg: p.InputError) -> bytes:
        replicas = await self.channel.input_failed(msg.input_id, list(msg.replica_ids))
        if replicas is None:
            return p.encode("FAIL", "")
        return p.encode("RETRY", [[r.replica_id, r.url] for r in replicas])

    async def _done(self) -> TaskResult:
        # 8.7: the worker is killed, its slot given back at once (as 0.5's node did: the
        # kill's end is not waited for), then the index synced and closed, DONE logged,
        # the outputs handed over.
        self._flush()
        reused = getattr(self.proc, "reused", False)
        if not reused:
            self._killpg()
        stop_reading = getattr(self.proc.stdout, "stop_reading", None)
        if stop_reading is not None:
            stop_reading()  # its end of output would wake us for nothing
        if reused:  # its warm process gives it another task, or it kills its group
            self._killed = True
            self.proc.release()
        exited = getattr(self.channel, "exited", None)
        if exited is not None:
            exited()  # the master's channel: the node's slot goes to the next task now
        return await self._finish()

    async def _finish(self) -> TaskResult:
        """DONE's end: the index file synced, the results saved (``save_results``), DONE
        logged, the outputs handed over."""
        try:
            if self.outputs.index_pending:
                if self.outputs.synced:  # an fsync: off the loop
                    await asyncio.to_thread(self.outputs.close)
                else:  # scratch: a small file's create and write cost less than the hop
                    self.outputs.close()
        except OSError as exc:
            return TaskFailed("error", "Could not write the index file: %s" % exc)
        saved = None
        if self.spec.save_results and self.outputs.local_paths:
            try:
                saved = await asyncio.to_thread(save_outputs, self.spec, self.outputs.local_paths)
            except Exception as exc:  # ddfs.md 7.2: the attempt fails and is retried
                return TaskFailed("error", "Could not save the results in DDFS: %s" % exc)
        duration = self.loop.time() - self.started
        await self.channel.event(
            "DONE: %s Task finished in %s" % (self.tag, format_duration(duration))
        )
        return TaskDone(outputs=self.outputs.task_outputs(saved), duration=duration)

    def _flush(self) -> None:
        """Write the replies that are ready, in request order, in one write; from the
        first deferred one on (a deferred INPUT, a delayed OK), or while the worker has
        not taken the last write, the writer task sends them (``_write_replies``).

        Through a transport (an ``asyncio`` ``StreamWriter``: the pipe of a worker
        started with ``/bin/sh``) the write is the transport's.  A stdin that sends in
        ``drain`` (the zygote's ``WorkerInput``) has its ``drain`` run here until it
        would wait (``_run_until_wait``): a send that fits in the socket costs no task;
        one that waits is finished by the writer task before anything else."""
        replies = self.replies
        if not replies or self.writer is not None:
            return  # nothing to write, or the writer task holds the order
        if self.input_closed:
            self._input_gone()
            return
        stdin = self.proc.stdin
        transport = getattr(stdin, "transport", None)
        sending: Awaitable[None] | None = None
        if transport is not None and transport.is_closing():
            self._input_gone()
            return
        ready = transport is None or transport.get_write_buffer_size() == 0
        if ready and isinstance(replies[0], bytes):
            data = replies.popleft()
            while replies and isinstance(replies[0], bytes):
                data += replies.popleft()  # type: ignore[operator]
            stdin.write(data)
            if transport is None:
                try:
                    sending = _run_until_wait(stdin.drain())
                except (BrokenPipeError, ConnectionResetError):
                    self._input_gone()
                    return
            if sending is None and not replies:
                return
        self.writer = asyncio.create_task(self._write_replies(sending))
        self.writer.add_done_callback(self._writer_done)

    def _input_gone(self) -> None:
        if not self.input_closed:
            self.input_closed = True
            logger.debug("%s: worker closed its input", self.tag)
        self.replies.clear()

    async def _write_replies(self, sending: Awaitable[None] | None = None) -> None:
        """Send the queued replies strictly in request order; a deferred one holds later
        ones, the ready ones behind it go in the same write.  ``sending``: the rest of a
        send ``_flush`` started."""
        assert self.proc is not None and self.proc.stdin is not None
        stdin = self.proc.stdin
        replies = self.replies
        try:
            if sending is not None:
                await sending
            await stdin.drain()  # the worker has taken what was written before
            while replies:
                make = replies.popleft()
                data = make if isinstance(make, bytes) else await make()
                while replies and isinstance(replies[0], bytes):
                    data += replies.popleft()  # type: ignore[operator]
                stdin.write(data)
                await stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            self._input_gone()

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        """The writer task ended: the next ready replies are written at once again; a
        failure (the channel's) goes to the reader, which raises it (``_read``)."""
        if self.writer is task:
            self.writer = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None and self.proc is not None and self.proc.stdout is not None:
            self.writer = task  # keep it: no more replies are written after a failure
            self.proc.stdout.set_exception(exc)
        elif self.replies:
            self._flush()
