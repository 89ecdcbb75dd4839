"""A pre-started Python that forks task workers: fast starts for the standard launcher.

Owns: the node-side client that starts the zygote process
(``python -m disco.node.zygote_process``, see that module) and asks it for workers.  Starting a fresh interpreter and importing the worker library costs
about 0.1 s per task on a small machine; a fork of a process that has already imported it
costs a few milliseconds.  Nothing changes on the wire: the forked worker is the same
``disco.worker`` program, with the same working directory, environment, niceness, session
and stdin/stdout/stderr as the one ``bin/disco-worker`` would exec (master-api.md 8.1),
and it speaks the same protocol to the runner.

It is used only when the job's worker executable is byte for byte our standard launcher
(``disco.worker.LAUNCHER``); any other worker (another language, a custom script) is
started with ``/bin/sh`` as usual.  If the zygote is unavailable, the runner falls back to
the normal start.

Wire between runner and zygote (a Unix socket pair): a request is one JSON line
``{"id": n, "cwd": ..., "env": {...}}`` (optionally ``"registry"``: the worker records
its own session, see ``disco.node.zygote_process``) sent with one file descriptor (the
worker's end of a socket pair, to become its fds 0, 1 and 2); the zygote answers
``{"id": n, "pid": p}`` and later ``{"exit": p, "code": c}`` when that child ends (``c``
negative for a signal).  A worker of a job whose pack file is known is forked by the
job's warm process instead: ``{"id": n, "warm": true, "cwd", "env", "jobfile"}`` sent
with our end of a new socket pair starts it, and the node then asks it directly
(``_WarmChannel``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from disco.node.orphans import WorkerRegistry
from disco.node.zygote_process import _REPORT_ENV, MAX_WARM, WARM_IDLE, zygote_environ

#: Seconds between two looks for idle warm processes to stop.
TRIM_INTERVAL = 10.0

logger = logging.getLogger(__name__)


# -- the node side ----------------------------------------------------------------------
class WorkerInput:
    """The worker's stdin: ``write`` + ``drain`` + ``close``, as a ``StreamWriter``'s.

    The worker's stdin and stdout are one socket.  Written through the reading
    transport, a send that fails (the worker died before reading its last replies:
    EPIPE) would close that transport and fail the pending read with the send's error,
    losing the output still buffered and the worker's end-of-output.  Replies are sent
    on a duplicate descriptor of the socket instead, so a failed send fails only the
    send, and the reader sees the worker's output to its end.
    """

    def __init__(self, sock: socket.socket, output: WorkerOutput) -> None:
        self._sock = sock.dup()
        self._output = output  # the reading side, closed with us
        self._queued: list[bytes] = []
        self._sending = False
        self._closed = False

    def write(self, data: bytes) -> None:
        self._queued.append(data)

    async def drain(self) -> None:
        data = b"".join(self._queued)
        self._queued.clear()
        if not data or self._closed:
            return
        self._sending = True
        try:
            await asyncio.get_running_loop().sock_sendall(self._sock, data)
        finally:
            self._sending = False
            if self._closed:  # closed mid-send: the loop has let go of the descriptor now
                self._sock.close()

    def close(self) -> None:
        self._closed = True
        if not self._sending:  # else when the send ends (a descriptor the loop still
            self._sock.close()  # watches must not be closed and reused under it)
        self._output.close()


class WorkerOutput:
    """The worker's stdout, read by a loop reader callback on our end of its socket:
    ``read`` as a ``StreamReader``'s (``b""`` at the end), ``set_exception``, ``close``.

    No transport and no protocol: the callback receives into a buffer and wakes the one
    waiting ``read``; it stops reading while ``limit`` bytes wait unread.  A reset
    connection (the worker ended with replies it had not read) is the end of its output.

    ``consumer``: while a ``read`` waits and nothing is buffered, the bytes received go
    to it first, in the callback (the runner answers the messages it can at once there:
    no wake-up of the reading task).  It returns ``CONSUMED`` (taken, the read goes on
    waiting), ``POKE`` (taken, and the read returns ``POKE``: the reader has work) or
    ``None`` (not taken: buffered for the read as usual).
    """

    def __init__(self, sock: socket.socket, limit: int = 1 << 20) -> None:
        self._sock = sock
        self._fd = sock.fileno()
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._buf = bytearray()
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._reading = False
        self._closed = False
        self._poked = False
        self.consumer: Callable[[bytes], object] | None = None
        self._resume()

    def _resume(self) -> None:
        if not self._reading and not self._eof and not self._closed:
            self._reading = True
            self._loop.add_reader(self._fd, self._readable)

    def _pause(self) -> None:
        if self._reading:
            self._reading = False
            self._loop.remove_reader(self._fd)

    def _readable(self) -> None:
        try:
            data = self._sock.recv(_RECV)
        except (BlockingIOError, InterruptedError):
            return
        except ConnectionResetError:
            data = b""
        except OSError as exc:
            self._exc = exc
            data = b""
        if data:
            if self.consumer is not None and self._waiter is not None and not self._buf:
                taken = self.consumer(data)
                if taken is CONSUMED:
                    return
                if taken is POKE:
                    self._poked = True
                    self._wake()
                    return
            self._buf += data
            if len(self._buf) >= self._limit:
                self._pause()
        else:
            self._eof = True
            self._pause()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def set_exception(self, exc: BaseException) -> None:
        """Make the next ``read`` raise ``exc`` (a failure of the reply writer)."""
        self._exc = exc
        self._wake()

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all until the end with ``n < 0``); ``b""`` at the end;
        ``POKE`` when the ``consumer`` asked for it."""
        while True:
            if self._exc is not None:
                exc, self._exc = self._exc, None
                raise exc
            if self._poked:
                self._poked = False
                return POKE
            if self._buf and (n >= 0 or self._eof):
                if n < 0 or n >= len(self._buf):
                    data = bytes(self._buf)
                    self._buf.clear()
                else:
                    data = bytes(self._buf[:n])
                    del self._buf[:n]
                self._resume()
                return data
            if self._eof or self._closed:
                return b""
            self._resume()
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def stop_reading(self) -> None:
        """Read no more (the worker is done and killed: no wake-up for its end)."""
        self._eof = True
        self._pause()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._pause()
            self._sock.close()
            self._wake()


# 64 KiB: a larger buffer is above glibc's mmap threshold (128 KiB), and each read
# then cost an mmap, an mremap and an munmap (two reads per task: 6 syscalls).
_RECV = 64 * 1024
_decode = json.JSONDecoder().decode
#: What a ``WorkerOutput.consumer`` returns: the bytes are taken; the bytes are taken
#: and the waiting ``read`` returns ``POKE``.
CONSUMED = object()
POKE = b"<poke>"


def worker_streams(sock: socket.socket) -> tuple[WorkerOutput, WorkerInput]:
    """The worker's output (``WorkerOutput``) and input (a ``WorkerInput``) on our end
    ``sock``; reading starts at once (before the worker's pid is known)."""
    sock.setblocking(False)
    output = WorkerOutput(sock)
    return output, WorkerInput(sock, output)


def settle_report(
    msg: dict[str, Any],
    pending: dict[int, asyncio.Future[int]],
    children: dict[int, ZygoteProcess],
    early_exits: dict[int, int],
    error: type[OSError],
    released: set[int] | None = None,
) -> bool:
    """Apply one answer of the zygote or of a warm process: ``{"id", "pid"}`` (or
    ``"error"``, raised as ``error``) settles a spawn request; ``{"exit", "code"}`` ends a
    child (kept in ``early_exits`` if it ended before its spawn was settled; forgotten
    if it is a worker ``released`` after its task).  True for an exit."""
    if "id" in msg:
        fut = pending.pop(msg["id"], None)
        if fut is not None and not fut.done():
            if "error" in msg:
                fut.set_exception(error(msg["error"]))
            else:
                fut.set_result(int(msg["pid"]))
        return False
    if "exit" in msg:
        pid, code = int(msg["exit"]), int(msg["code"])
        proc = children.pop(pid, None)
        if proc is None and released is not None and pid in released:
            released.discard(pid)
        elif proc is None:
            early_exits[pid] = code
        else:
            proc._set_exit(code)
        return True
    return False


class ZygoteProcess:
    """Looks like ``asyncio.subprocess.Process`` to the runner: pid, stdin, stdout, wait().

    ``reused``: the worker goes back to its job's warm process after DONE instead of
    being killed (``release``; docs/decisions.md "A worker process runs several tasks
    of its job")."""

    def __init__(self, pid: int, reader: WorkerOutput, writer: WorkerInput) -> None:
        self.pid = pid
        self.stdout = reader
        self.stdin = writer
        self.returncode: int | None = None
        self._waiters: list[asyncio.Future[int]] = []  # one per waiting call of wait()
        self._warm: _WarmChannel | None = None  # set when the worker is reused

    @property
    def reused(self) -> bool:
        return self._warm is not None

    def release(self) -> None:
        """At DONE, for a ``reused`` worker: our end of its socket closed (the end of
        its stdin tells it that its task is over), and it counts as ended for the
        runner; its warm process gives it the job's next task, or it kills its own
        process group (``disco.node.zygote_process._WarmProcess._again``)."""
        self.stdin.close()  # and the output, our end
        if self._warm is not None:
            self._warm.release(self)
        self._set_exit(0)

    def _set_exit(self, code: int) -> None:
        if self.returncode is None:
            self.returncode = code
        for fut in self._waiters:
            if not fut.done():  # a cancelled wait() cancels only its own future
                fut.set_result(self.returncode)
        self._waiters.clear()

    async def wait(self) -> int:
        if self.returncode is not None:
            return self.returncode
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        return await fut


class Zygote:
    """Client of one zygote process; start it with ``await start()``."""

    def __init__(self, registry: WorkerRegistry | None = None) -> None:
        self.registry = registry  # the zygote's session is recorded like a worker's
        self._proc: asyncio.subprocess.Process | None = None
        self._sock: socket.socket | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._children: dict[int, ZygoteProcess] = {}
        self._early_exits: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self.failed = False
        # the jobs' warm processes, asked directly (_WarmChannel)
        self._warms: dict[tuple[Any, ...], _WarmChannel] = {}
        self._starting: dict[tuple[Any, ...], asyncio.Future[_WarmChannel | None]] = {}
        self._trimmer: asyncio.TimerHandle | None = None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.returncode is None and not self.failed

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def attach(self, registry: WorkerRegistry) -> None:
        """Record the (already started) zygote's session in ``registry`` (the node that
        adopts a zygote started before it, see ``prestart``)."""
        if self.registry is None and self._proc is not None:
            self.registry = registry
            registry.add(self._proc.pid)

    async def start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "disco.node.zygote_process",
                str(child.fileno()),
                # it dies with this process (its workers then die with it), asking for it
                # itself first thing (``die_with_parent``): no ``preexec_fn``, so the
                # child is spawned with ``vfork`` instead of a fork of this whole
                # interpreter (whose pages the master then copies as it writes them,
                # while it imports and starts: docs/decisions.md)
                str(os.getpid()),
                pass_fds=(child.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
                env=zygote_environ(os.environ),
            )
        finally:
            child.close()
        if self.registry is not None:
            self.registry.add(self._proc.pid)
        parent.setblocking(False)
        self._sock = parent
        self._reader_task = asyncio.create_task(self._read_reports())

    async def spawn(
        self,
        cwd: str,
        env: dict[str, str],
        jobfile: str | None = None,
        registry: WorkerRegistry | None = None,
    ) -> ZygoteProcess:
        """Fork a worker in ``cwd`` with ``env``; its stdio is a socket we hold.

        ``jobfile``: fork it from the job's warm process (started on first need, then
        asked directly, see ``disco.node.zygote_process``).  ``registry``: the worker's
        session is recorded there by the process that forks it, which removes the
        record when it reaps the worker."""
        if not self.alive or self._sock is None:
            raise OSError("the zygote is not running")
        key = _warm_key(cwd, env, jobfile) if jobfile is not None else None
        if key is not None:
            for _try in range(2):
                warm = await self._warm(key, cwd, env, jobfile, registry)  # type: ignore[arg-type]
                if warm is None:
                    break
                try:
                    return await warm.spawn(env.get(_REPORT_ENV))
                except _WarmGone:
                    continue  # killed since its last task: start a new one
        # no warm process: fork the worker from the zygote
        req: dict[str, Any] = {"cwd": cwd, "env": env}
        if registry is not None:
            req["registry"] = os.path.join(registry.directory, registry.owner)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        output, stdin = worker_streams(ours)  # read from the start, as the pid comes
        try:
            pid = await self._request(req, theirs, None)
        except BaseException:
            stdin.close()  # and the output, our end
            raise
        finally:
            theirs.close()
        proc = ZygoteProcess(pid, output, stdin)
        self._children[pid] = proc
        if pid in self._early_exits:
            proc._set_exit(self._early_exits.pop(pid))
            self._children.pop(pid, None)
        return proc

    async def _request(
        self, req: dict[str, Any], theirs: socket.socket, ours: socket.socket | None
    ) -> int:
        """Send the zygote ``req`` with ``theirs``; the pid it answers.  ``ours`` (the
        other end, if given) is closed, and a process forked meanwhile killed, if this
        fails."""
        loop = asyncio.get_running_loop()
        try:
            async with self._lock:
                if self._sock is None:
                    raise OSError("the zygote is not running")
                self._next_id += 1
                rid = self._next_id
                fut: asyncio.Future[int] = loop.create_future()
                self._pending[rid] = fut
                line = json.dumps({"id": rid, **req}).encode() + b"\n"
                await _send_with_fd(self._sock, line, theirs.fileno())
            return await _answer(fut)
        except BaseException:
            if ours is not None:
                ours.close()
            raise

    async def _warm(
        self,
        key: tuple[Any, ...],
        cwd: str,
        env: dict[str, str],
        jobfile: str,
        registry: WorkerRegistry | None,
    ) -> _WarmChannel | None:
        """The job's warm process (started if there is none), ``None`` if it cannot
        start (the zygote then forks the worker)."""
        warm = self._warms.get(key)
        if warm is not None and not warm.gone:
            return warm
        starting = self._starting.get(key)
        if starting is not None:  # another task of the job is starting it
            return await asyncio.shield(starting)
        loop = asyncio.get_running_loop()
        started: asyncio.Future[_WarmChannel | None] = loop.create_future()
        self._starting[key] = started
        warm = None
        try:
            self._trim()
            reuse = reuse_workers(env)
            req: dict[str, Any] = {"warm": True, "cwd": cwd, "jobfile": jobfile}
            if reuse:
                req["reuse"] = True
            req["env"] = {k: v for k, v in env.items() if k != _REPORT_ENV}
            if registry is not None:
                req["registry"] = os.path.join(registry.directory, registry.owner)
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                pid = await self._request(req, theirs, ours)
            except OSError as exc:
                logger.warning("no warm process for %s: %s", jobfile, exc)
            else:
                warm = _WarmChannel(key, pid, ours, self._forget_warm, reuse)
                self._warms[key] = warm
                self._arm_trim()
            finally:
                theirs.close()
        finally:
            del self._starting[key]
            started.set_result(warm)
        return warm

    def _forget_warm(self, warm: _WarmChannel) -> None:
        if self._warms.get(warm.key) is warm:
            del self._warms[warm.key]

    def _trim(self) -> None:
        """Stop the least recently used idle warm processes beyond ``MAX_WARM``, and
        those idle for ``WARM_IDLE`` seconds (closing its channel stops one)."""
        now = time.monotonic()
        idle = sorted((w for w in self._warms.values() if w.idle), key=lambda w: w.last_used)
        for n, warm in enumerate(idle):
            if len(idle) - n >= MAX_WARM or now - warm.last_used > WARM_IDLE:
                warm.close()

    def _arm_trim(self) -> None:
        if self._trimmer is None and self._warms:
            loop = asyncio.get_running_loop()
            self._trimmer = loop.call_later(TRIM_INTERVAL, self._trim_later)

    def _trim_later(self) -> None:
        self._trimmer = None
        self._trim()
        self._arm_trim()

    async def _read_reports(self) -> None:
        assert self._sock is not None
        loop = asyncio.get_running_loop()
        buf = b""
        try:
            while True:
                data = await loop.sock_recv(self._sock, 65536)
                if not data:
                    break
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    self._report(json.loads(line))
        except (OSError, ValueError) as exc:
            logger.warning("zygote channel failed: %s", exc)
        finally:
            self.failed = True
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(OSError("the zygote stopped"))
            # Children of a dead zygote are orphans we can no longer reap: report them gone.
            for proc in list(self._children.values()):
                proc._set_exit(-signal.SIGKILL)
            self._children.clear()

    def _report(self, msg: dict[str, Any]) -> None:
        settle_report(msg, self._pending, self._children, self._early_exits, OSError)

    async def close(self) -> None:
        if self._trimmer is not None:
            self._trimmer.cancel()
            self._trimmer = None
        for warm in list(self._warms.values()):
            warm.close()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None and self._proc.returncode is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            await self._proc.wait()
        if self._proc is not None and self.registry is not None:
            self.registry.remove(self._proc.pid)
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)


class _WarmGone(OSError):
    """The warm process of a job is gone (killed, crashed, stopped)."""


class _WarmChannel:
    """The node's own channel to one job's warm process (``disco.node.zygote_process``):
    a request ``{"id": n, "report": <report path or null>}`` with the worker's end of a
    socket pair; answers ``{"id": n, "pid": p}`` (or ``"error"``) and, when that worker
    ends, ``{"exit": p, "code": c}``.  The zygote only forks the warm process; the
    tasks' requests, pids and exits go straight between the node and it."""

    def __init__(
        self,
        key: tuple[Any, ...],
        pid: int,
        sock: socket.socket,
        on_gone: Callable[[_WarmChannel], None],
        reuse: bool = False,
    ) -> None:
        self.key = key
        self.pid = pid
        self.sock = sock
        self.reuse = reuse  # its workers are reused (``ZygoteProcess.release``)
        self.released: set[int] = set()  # workers released, alive for another task
        self.buf = b""
        self.next_id = 0
        self.pending: dict[int, asyncio.Future[int]] = {}
        self.children: dict[int, ZygoteProcess] = {}
        self.early_exits: dict[int, int] = {}
        self.last_used = time.monotonic()
        self.gone = False
        self._on_gone = on_gone
        self._lock = asyncio.Lock()
        self._loop = asyncio.get_running_loop()
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._readable)

    @property
    def idle(self) -> bool:
        return not self.children and not self.pending

    async def spawn(self, report: str | None) -> ZygoteProcess:
        """Ask the warm process for a worker of the job (``report``: its report path).

        The request is sent at once when the socket takes it whole (no lock, no wait);
        only a send that would wait takes the lock, which keeps requests whole and in
        order.  The worker's output is read from the start, as its pid comes."""
        if self.gone:
            raise _WarmGone("the warm process of the job is gone")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        output, stdin = worker_streams(ours)
        try:
            try:
                self.next_id += 1
                rid = self.next_id
                fut: asyncio.Future[int] = self._loop.create_future()
                self.pending[rid] = fut
                self.last_used = time.monotonic()
                line = _request_line(rid, report)
                try:
                    await self._send(line, theirs.fileno())
                except OSError as exc:
                    self.pending.pop(rid, None)
                    raise _WarmGone(str(exc)) from exc
                pid = await _answer(fut)
            finally:
                theirs.close()
        except BaseException:
            stdin.close()  # and the output, our end
            raise
        proc = ZygoteProcess(pid, output, stdin)
        if self.reuse:
            proc._warm = self
            self.released.discard(pid)  # a released worker given this task
        if pid in self.early_exits:
            proc._set_exit(self.early_exits.pop(pid))
        elif self.gone:
            proc._set_exit(-signal.SIGKILL)
        else:
            self.children[pid] = proc
        return proc

    async def _send(self, line: bytes, fd: int) -> None:
        """Send one request with ``fd``: at once if nothing else is being sent and the
        socket takes it whole, else under the lock (``_send_with_fd``)."""
        sent = 0
        if not self._lock.locked():
            if self.gone:
                raise _WarmGone("the warm process of the job is gone")
            try:
                sent = socket.send_fds(self.sock, [line], [fd])
            except (BlockingIOError, InterruptedError):
                sent = 0
            if sent == len(line):
                return
        async with self._lock:  # free when we found it free: acquired without a wait
            if self.gone:
                raise _WarmGone("the warm process of the job is gone")
            if sent:  # the rest of a request the socket took in part (its fd went)
                await self._loop.sock_sendall(self.sock, line[sent:])
            else:
                await _send_with_fd(self.sock, line, fd)

    def _readable(self) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._ended()
            return
        self.buf += data
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                msg = _decode(line.decode())  # json.loads(line) without its checks
            except ValueError:
                logger.warning("warm process %d: unreadable answer %r", self.pid, line[:80])
                continue
            if settle_report(
                msg, self.pending, self.children, self.early_exits, _WarmGone, self.released
            ):
                self.last_used = time.monotonic()

    def release(self, proc: ZygoteProcess) -> None:
        """``proc`` ended its task with DONE and goes back to the warm process: not a
        running child any more (its exit, when it comes, is not a task's)."""
        if self.children.get(proc.pid) is proc:
            del self.children[proc.pid]
            self.released.add(proc.pid)

    def _ended(self) -> None:
        """The warm process is gone: its workers die with it (reported killed), its
        unanswered requests fail (the node then starts another warm process)."""
        self.close()
        for pid in sorted(self.children):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        for proc in list(self.children.values()):
            proc._set_exit(-signal.SIGKILL)
        self.children.clear()
        for fut in self.pending.values():
            if not fut.done():
                fut.set_exception(_WarmGone("the warm process of the job died"))
        self.pending.clear()

    def close(self) -> None:
        """Stop using it: the warm process leaves when its channel ends."""
        if not self.gone:
            self.gone = True
            self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self._on_gone(self)


#: The environment variable (the node's, or the job's ``jobenvs``) that turns the reuse
#: of worker processes off for a job: ``0``, ``false``, ``no`` or ``off``.
REUSE_ENV = "DISCO_WORKER_REUSE"


def reuse_workers(env: dict[str, str]) -> bool:
    """Are the workers of a job with this environment reused after DONE?"""
    return env.get(REUSE_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _warm_key(cwd: str, env: dict[str, str], jobfile: str) -> tuple[Any, ...] | None:
    """Which warm process may fork this worker: same job home, same job pack file
    (inode, size, mtime), same environment apart from the report path."""
    try:
        st = os.stat(jobfile)
    except OSError:
        return None
    if _REPORT_ENV in env:
        env = dict(env)  # a copy and a pop in C: cheaper than filtering every item
        del env[_REPORT_ENV]
    return (cwd, jobfile, st.st_ino, st.st_size, st.st_mtime_ns, frozenset(env.items()))


def _request_line(rid: int, report: str | None) -> bytes:
    """``json.dumps({"id": rid, "report": report}) + "\\n"`` as bytes (the warm process
    reads this exact shape first), without the encoder's setup."""
    text = "null" if report is None else encode_basestring_ascii(report)
    return b'{"id": %d, "report": %s}\n' % (rid, text.encode())


async def _answer(fut: asyncio.Future[int]) -> int:
    """The pid a request is answered with; a process forked meanwhile is killed if
    we stop waiting (cancelled: an attempt killed as it started)."""
    # not asyncio.wait_for: on 3.11 it swallows a cancel (a kill) that comes as the pid
    # arrives, and the attempt would go on with its kill forgotten; a timer that fails
    # the future itself costs less than an ``asyncio.timeout`` per request
    expiry = asyncio.get_running_loop().call_later(PID_TIMEOUT, _expire, fut)
    try:
        return await fut
    except BaseException:
        if fut.done() and not fut.cancelled() and fut.exception() is None:
            with contextlib.suppress(OSError):  # forked, then killed: kill it
                os.killpg(fut.result(), signal.SIGKILL)
        raise
    finally:
        expiry.cancel()


#: Seconds a request waits for its pid.
PID_TIMEOUT = 30.0


def _expire(fut: asyncio.Future[int]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError("no pid in %g seconds" % PID_TIMEOUT))


async def start_zygote(registry: WorkerRegistry | None = None, where: str = "") -> Zygote | None:
    """A started zygote, or ``None`` (logged, ``where`` before the text) if it cannot
    start: workers then start normally."""
    zygote = Zygote(registry)
    try:
        await zygote.start()
    except OSError as exc:
        logger.warning("%sno zygote, workers start normally: %s", where, exc)
        return None
    return zygote


async def prestart(settings: Any = None) -> Zygote | None:
    """Start a zygote before the rest of a master exists (no registry yet: the local
    backend that adopts it calls ``attach``); ``None`` if it cannot start, or when
    ``settings`` name a Dask scheduler (``DISCO_DASK_SCHEDULER``: the nodes on the Dask
    workers start the workers, and a zygote here would only wait to be closed).

    The embedded master and ``python -m disco.master`` call this before importing the
    master, so the zygote imports the worker library on the other core while the master
    imports its own, and the first task of the first job finds it ready.
    """
    if settings is not None:
        from disco.settings import dask_scheduler

        if dask_scheduler(settings):
            return None
    return await start_zygote()


class ZygoteHolder:
    """The zygote of one node runtime (the local backend, a Dask node's ``NodeService``).

    ``get()`` starts it on first need (one start at a time), starts a new one when it has
    died, and gives up for good (``enabled`` false: workers start normally) when one
    cannot start.  ``adopt``: a zygote started before the node (``prestart``).
    """

    def __init__(
        self,
        registry: WorkerRegistry,
        *,
        enabled: bool = True,
        adopt: Zygote | None = None,
        where: str = "",
    ) -> None:
        self.registry = registry  # the zygote's session is recorded like a worker's
        self.enabled = enabled
        self.where = where  # log prefix, e.g. "node <host>: "
        self.current: Zygote | None = None
        if adopt is not None:
            adopt.attach(registry)
            self.current = adopt
        self._lock = asyncio.Lock()
        self._prestart: asyncio.Task[Zygote | None] | None = None
        self._closed = False

    def prestart(self) -> None:
        """Start the zygote in the background (the first task then finds it ready)."""
        if self.enabled and self._prestart is None:
            self._prestart = asyncio.create_task(self.get())

    async def get(self) -> Zygote | None:
        """The running zygote, ``None`` when workers start normally."""
        if not self.enabled or self._closed:
            return None
        async with self._lock:
            if self.current is None or not self.current.alive:
                if self.current is not None:
                    await self.current.close()
                zygote = await start_zygote(self.registry, self.where)
                if zygote is None:
                    self.enabled = False
                    return None
                self.current = zygote
            return self.current

    def stop(self) -> None:
        """Start no zygote any more (the node is closing)."""
        self._closed = True

    async def close(self) -> None:
        self.stop()
        if self._prestart is not None:
            await asyncio.gather(self._prestart, return_exceptions=True)
        if self.current is not None:
            await self.current.close()
            self.current = None


async def _send_with_fd(sock: socket.socket, data: bytes, fd: int) -> None:
    """Send ``data`` with ``fd`` attached to its first byte, never blocking the loop.

    The socket stays non-blocking throughout: the event loop reads reports from it at
    the same time, and a blocking socket there would stall the loop inside ``recv``.
    """
    loop = asyncio.get_running_loop()
    while True:
        try:
            sent = socket.send_fds(sock, [data], [fd])
        except (BlockingIOError, InterruptedError):
            await asyncio.sleep(0.001)
            continue
        if sent >= 1:
            break
    if sent < len(data):
        await loop.sock_sendall(sock, data[sent:])
