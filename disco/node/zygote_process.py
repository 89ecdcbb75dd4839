"""The zygote process: a pre-started Python that forks task workers on request.

Run as ``python -m disco.node.zygote_process <fd> <node pid>`` by
``disco.node.zygote.Zygote``, which documents the wire between the two (it dies with the
node, ``die_with_parent``, first thing).  This module imports no asyncio and nothing the
worker does not need, so the zygote is ready quickly; ``_preload`` imports what every
Python task imports, so that a forked worker starts in milliseconds.

**Warm processes** (a request ``{"warm": true, "cwd", "env", "jobfile"}`` sent with the
node's end of a socket pair): the zygote forks one process per job (per job home, job
pack file and environment), which loads the job pack, imports the job's modules and
unpickles its functions once (``disco.task.preload``), then forks each task of that job
from there: every task is still a new process with the module state of a fresh import
(a task's changes to module globals die with it), but the work every task of the job
repeated is done once.  The node talks to the warm process directly over that socket
(``disco.node.zygote._WarmChannel``: ``{"id": n, "report": path}`` with the worker's
socket, answered ``{"id": n, "pid": p}`` and ``{"exit": p, "code": c}``); the zygote
relays nothing and only reaps it.  When a warm process dies (killed, crashed), the node
reports its running workers killed and starts a new one for the next task; the node
stops idle ones (``MAX_WARM`` kept, none idle for ``WARM_IDLE`` seconds) by closing
their channel.  A warm process's tasks create no report, crash or registry file of
their own (``_WarmProcess``).

**Registry**: a request may carry ``registry`` (``<directory>/<owner>`` of the node's
``disco.node.orphans.WorkerRegistry``): a worker forked by the zygote records its own
session there and the zygote removes the record when it reaps it; a warm process
lists its tasks' sessions in one file of its own.
"""

from __future__ import annotations

import _signal
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any, NoReturn

from disco.node.orphans import die_with_parent, ready_to_fork, start_time

_MAX_REQUEST = 4 << 20
_MAX_FD = os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 65536
MAX_WARM = 4  # warm processes without running tasks kept
WARM_IDLE = 60.0  # seconds without a request before a warm process is stopped
_REPORT_ENV = "DISCO_TASK_REPORT"  # disco.failure.REPORT_ENV (not imported: keep light)


#: Set by the node in the zygote's environment with ``LD_BIND_NOW`` (``zygote_environ``):
#: the zygote takes both out of its own environment first thing.
_BIND_NOW_ENV = "DISCO_ZYGOTE_BIND_NOW"


def zygote_environ(environ: Any) -> dict[str, str]:
    """The environment the node starts the zygote with: its own, plus ``LD_BIND_NOW``.

    The dynamic linker then binds every symbol of the libraries loaded at the start
    (``libpython``, ``libc``) in the zygote, once; otherwise each symbol is bound
    lazily on its first call, and the functions first called in a forked child (the
    child's side of ``fork`` in Python and libc, the task's first calls) were bound in
    every task anew (a write to the GOT, symbol table reads: about 20 page faults of a
    bare fork's 95).  Extension modules are loaded with ``RTLD_NOW`` already.  Not
    passed on: the zygote drops it from its environment (``_drop_bind_now``), and every
    worker gets the environment the node asks for anyway."""
    env = dict(environ)
    if "LD_BIND_NOW" not in env:
        env["LD_BIND_NOW"] = "1"
        env[_BIND_NOW_ENV] = "1"
    return env


def _drop_bind_now() -> None:
    """In the zygote: ``LD_BIND_NOW`` has done its work (at the exec); out of the
    environment if the node put it there (``zygote_environ``)."""
    if os.environ.pop(_BIND_NOW_ENV, None) is not None:
        os.environ.pop("LD_BIND_NOW", None)


#: ``disco.worker.Worker.main``, looked up by ``_preload`` (a task does not import it).
_WORKER_MAIN: Any = None


def _preload() -> None:
    # What every Python task imports; after this a fork starts a worker in milliseconds.
    global _WORKER_MAIN
    import platform  # noqa: F401
    import uuid  # noqa: F401

    import cloudpickle  # noqa: F401

    import disco.fileutils  # noqa: F401
    import disco.job  # noqa: F401
    import disco.schemes.scheme_disco  # noqa: F401
    import disco.schemes.scheme_file  # noqa: F401
    import disco.schemes.scheme_raw  # noqa: F401
    import disco.sysutil  # noqa: F401
    import disco.task  # noqa: F401
    import disco.util  # noqa: F401
    import disco.worker  # noqa: F401
    import disco.worker.classic.external  # noqa: F401
    import disco.worker.classic.netstring  # noqa: F401
    import disco.worker.classic.worker  # noqa: F401
    import disco.worker.simple  # noqa: F401
    import disco.worker.task_io  # noqa: F401
    from disco.worker import Worker

    _WORKER_MAIN = Worker.main


def _rehearse() -> None:
    """Run the framework's own path of a task here, before any fork
    (``disco.worker.rehearse``): every warm process and task forked from this process
    then finds its code warmed up instead of warming it up (and copying the pages that
    writes) itself."""
    try:
        from disco.worker.rehearse import REHEARSALS, rehearse

        times = os.environ.get("DISCO_ZYGOTE_REHEARSALS", "")
        rehearse(times=int(times) if times.strip() else REHEARSALS)
    except Exception:
        pass  # a zygote without a rehearsal: its tasks warm up themselves


def _freeze() -> None:
    """Leave what is loaded now out of every later garbage collection (``gc.freeze``):
    a collection in a forked worker would otherwise walk, and so copy, every page of
    objects it shares with this process."""
    import gc

    gc.collect()
    gc.freeze()


def _become_worker_home(cwd: str, env: dict[str, str]) -> None:
    """cwd, environment and ``sys.path`` of ``python -m disco.worker`` in the job home."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    # What ``python -m disco.worker`` in the job home would have: the job home
    # first (not the zygote's own working directory), then PYTHONPATH.
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    sys.path[0:1] = [os.getcwd(), *extra]
    sys.argv = ["-m"]


#: The signals a forked worker or warm process resets, as plain ints (no enum member,
#: no tuple, no attribute of ``signal`` looked up in the child: pages it would copy).
_RESET_SIGNALS = tuple(
    int(sig) for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE)
)


def _reset_signals(
    _set_wakeup_fd: Any = _signal.set_wakeup_fd,
    _set: Any = _signal.signal,
    _default: int = int(_signal.SIG_DFL),
) -> None:
    _set_wakeup_fd(-1)
    for sig in _RESET_SIGNALS:
        _set(sig, _default)  # not signal.signal: no enum per call


def _register(prefix: str | None) -> str | None:
    """Record this new session in the node's worker registry (``None``: not asked)."""
    if not prefix:
        return None
    pid = os.getpid()
    path = "%s-%d-%d" % (prefix, pid, start_time(pid))
    try:
        try:
            open(path, "xb").close()  # noqa: SIM115
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            open(path, "xb").close()  # noqa: SIM115
    except OSError:
        return None
    return path


def _run_worker(
    fd: int,
    parent: int,
    setup: Any,
    *args: Any,
    keep: tuple[int, ...] = (),
    again: Any = None,
) -> NoReturn:
    """In a forked child: become the worker bootstrap would have started, run it, exit.
    ``setup(*args)`` runs after the new session is made (a bound method and its
    arguments: no closure made per task); ``keep``: descriptors above 2 that stay open
    (the task's channel), in increasing order; ``again()``, if given, is asked after
    each task whether to run another (a reused worker, ``_WarmProcess``)."""
    code = 1
    try:
        die_with_parent(parent)  # the zygote dies with the master: so do its workers
        # the forker's own sockets are closed by the closerange below (their objects
        # stay referenced by the forker until this process exits, so are never finalized)
        _reset_signals()
        os.setsid()
        setup(*args)
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        # Nothing else stays open (an exec'd worker has only its stdio): not another
        # worker's socket still queued here, whose end would then never see its EOF.
        low = 3
        for kept in keep:
            os.closerange(low, kept)
            low = kept + 1
        os.closerange(low, _MAX_FD)
        # (random, if imported, is reseeded by its own at-fork hook)
        main = _WORKER_MAIN
        if main is None:
            from disco.worker import Worker

            main = Worker.main
        main()
        if again is not None:
            while again():
                main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


class _Forker:
    """Forks workers for requests and reports their pids and exits on ``ctrl``."""

    def __init__(self, ctrl: socket.socket) -> None:
        self.ctrl = ctrl
        self.registered: dict[int, str] = {}  # worker pid -> its registry record

    def setup(self, req: dict[str, Any]) -> Any:
        raise NotImplementedError

    def request(self, req: dict[str, Any], fd: int) -> None:
        self.fork_one(req, fd)

    def fork_one(self, req: dict[str, Any], fd: int) -> None:
        parent = os.getpid()
        setup = self.setup(req)
        registry = req.get("registry")
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(fd)
            _say(self.ctrl, {"id": req["id"], "error": str(exc)})
            return
        if pid == 0:

            def prepare() -> None:
                setup()
                _register(registry)

            _run_worker(fd, parent, prepare)
        os.close(fd)
        answer: dict[str, Any] = {"id": req["id"], "pid": pid}
        if registry:
            self.registered[pid] = answer["registry"] = "%s-%d-%d" % (
                registry,
                pid,
                start_time(pid),
            )
        _say(self.ctrl, answer)

    def watched(self) -> list[int]:
        """Descriptors to read besides ``ctrl`` (``readable`` when they are)."""
        return []

    def readable(self, fd: int) -> None:
        pass

    def timeout(self) -> float:
        """Seconds until ``tick`` is due."""
        return 10.0

    def tick(self) -> None:
        pass

    def close(self) -> None:
        pass

    def reaped(self, pid: int, code: int) -> None:
        path = self.registered.pop(pid, None)
        if path is not None:
            try:
                os.remove(path)
            except OSError:
                pass
        _say(self.ctrl, {"exit": pid, "code": code})


class _Zygote(_Forker):
    def __init__(self, ctrl: socket.socket) -> None:
        super().__init__(ctrl)
        self.warm_logs: dict[int, str | None] = {}  # warm process -> its registry file

    def setup(self, req: dict[str, Any]) -> Any:
        def setup() -> None:
            os.nice(19)
            _become_worker_home(req["cwd"], req["env"])

        return setup

    def request(self, req: dict[str, Any], fd: int) -> None:
        if req.get("warm"):
            self._start_warm(req, fd)
        else:
            self.fork_one(req, fd)

    def _start_warm(self, req: dict[str, Any], fd: int) -> None:
        """Fork the warm process of a job; ``fd`` (the node's socket pair end) becomes
        its own channel to the node: the node asks it for the job's tasks directly."""
        zygote = os.getpid()
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(fd)
            _say(self.ctrl, {"id": req["id"], "error": str(exc)})
            return
        if pid == 0:
            code = 1
            try:
                # only stdio and its own socket: not the zygote's, nor the sockets of
                # workers whose requests are queued in the zygote (held open here, a
                # worker's death would never reach the node as an end of file)
                self.ctrl.close()
                os.closerange(3, fd)
                os.closerange(fd + 1, _MAX_FD)
                _warm_main(req, socket.socket(fileno=fd), zygote)
                code = 0
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        os.close(fd)
        registry = req.get("registry")
        log = "%s-%d-%d-tasks" % (registry, pid, start_time(pid)) if registry else None
        self.warm_logs[pid] = log
        _say(self.ctrl, {"id": req["id"], "pid": pid})

    def reaped(self, pid: int, code: int) -> None:
        if pid in self.warm_logs:  # the node sees its channel end; its tasks died with it
            _remove(self.warm_logs.pop(pid))
            return
        super().reaped(pid, code)


class _WarmProcess(_Forker):
    """Inside a warm process: forks the tasks of one job (the job already loaded).

    Files: a task forked here creates no report, crash or registry file of its own.
    Its crash handler's descriptor is a pipe to this process that also carries the
    report's states (``disco.worker.report.use_channel``, read by ``_TaskChannel``);
    the report and crash files are written here only for a task that does not finish
    (the node reads them only then), or while a task runs longer than
    ``LIVE_REPORT_AFTER`` (the node's memory watch reads the limit from the report).
    The node's worker registry gets one append-only file per warm process
    (``<owner>-<pid>-<start>-tasks``, ``disco.node.orphans``): a ``+<pid> <start>`` line
    per task forked, ``-<pid>`` when it is reaped.  Every file a task created and
    deleted cost an inode allocation, which on ext4 without a journal scans past every
    inode deleted in the last 30 s or more."""

    def __init__(
        self, ctrl: socket.socket, cwd: str, registry: str | None = None, reuse: bool = False
    ) -> None:
        super().__init__(ctrl)
        self.cwd = cwd  # the job home
        # Reused workers (``reuse``): each worker forked here has a channel to this
        # process (a ``SOCK_SEQPACKET`` pair) on which, after a task that ended with
        # DONE, it says it waits for another (``disco.worker.warm``) and is handed the
        # next task's socket (and report pipe) instead of a new fork.
        self.reuse = reuse
        self.pool: dict[int, tuple[int, socket.socket]] = {}  # channel fd -> (pid, it)
        self.pool_fds: dict[int, int] = {}  # worker pid -> its channel's fd
        self.idle: list[int] = []  # workers waiting for a task, the newest last
        self.back: socket.socket | None = None  # in a worker forked here: its channel
        # task pid -> ``(read end of its pipe, report path, due time)``, for a task that
        # has run less than ``LIVE_REPORT_AFTER`` (in the order of their due times): no
        # object made per task (``serve``); a ``_TaskChannel`` only when one is needed
        self.pending: dict[int, tuple[int, str, float]] = {}
        self.channels: dict[int, _TaskChannel] = {}  # task pid -> its channel, from then
        self.by_fd: dict[int, _TaskChannel] = {}
        self.log: int | None = None  # the registry file of this process's tasks
        self.log_path: str | None = None
        # Fixed for this process's life (the job is loaded): looked up once, not per task.
        self.pid = os.getpid()
        self.crash_fd: int | None = sys.modules["disco.worker.report"]._crash_fd
        self.limit = _planned_limit()
        limit = self.limit
        self.limit_state = _limit_state(limit) if limit is not None and limit[0] else b""
        if registry:
            self._open_log(registry)

    def _become_task(self, report: str | None) -> None:
        """In a task just forked (or a reused worker's next task): its nice value, job
        home and report path."""
        if self.back is not None:
            sys.modules["disco.worker.warm"].first_task()
        os.nice(19)  # 8.1 (this process is not niced: ``_warm_main``)
        os.chdir(self.cwd)
        if report is None:
            os.environ.pop(_REPORT_ENV, None)
        else:
            os.environ[_REPORT_ENV] = report

    def _become_reporting_task(self, report: str | None, channel: int) -> None:
        """``_become_task``, and the report's states written to this process through
        ``channel`` (the write end of the task's pipe) as the crash handler's descriptor."""
        self._become_task(report)
        crash_fd = self.crash_fd
        assert crash_fd is not None
        os.dup2(channel, crash_fd, inheritable=False)
        sys.modules["disco.worker.report"].use_channel(crash_fd, self.limit)

    def fork_one(self, req: dict[str, Any], fd: int) -> None:
        self.fork_task(req["id"], req.get("report"), fd)

    def fork_task(self, rid: Any, report: str | None, fd: int) -> None:
        # Lean on purpose: every page this process writes between two forks is copied
        # again at its next write (copy-on-write with the newest task), so nothing is
        # made here that the task alone needs (its setup is made in the child).
        crash_fd = self.crash_fd
        pipe = os.pipe2(os.O_CLOEXEC) if report and crash_fd is not None else None
        while self.idle:
            if self._hand_over(self.idle.pop(), rid, report, fd, pipe):
                return
        pair = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) if self.reuse else None
        try:
            pid = os.fork()
        except OSError as exc:
            os.close(fd)
            if pipe is not None:
                os.close(pipe[0])
                os.close(pipe[1])
            if pair is not None:
                pair[0].close()
                pair[1].close()
            _say(self.ctrl, {"id": rid, "error": str(exc)})
            return
        if pid == 0:
            if pair is not None:
                self.back = pair[1]
            self._child(fd, report, pipe)
        if pair is not None:
            pair[1].close()
            self.pool[pair[0].fileno()] = (pid, pair[0])
            self.pool_fds[pid] = pair[0].fileno()
        if self.log is not None:
            _log(self.log, b"+%d %d\n" % (pid, _start_time(pid)))
        self._started(rid, pid, report, fd, pipe)

    def _started(
        self, rid: Any, pid: int, report: str | None, fd: int, pipe: tuple[int, int] | None
    ) -> None:
        """Worker ``pid`` has the task's socket ``fd`` (and ``pipe``): ours closed, the
        node told."""
        os.close(fd)
        if pipe is not None:
            os.close(pipe[1])
            os.set_blocking(pipe[0], False)
            assert report is not None
            self.pending[pid] = (pipe[0], report, time.monotonic() + LIVE_REPORT_AFTER)
        _say_pid(self.ctrl, rid, pid)

    def _hand_over(
        self, pid: int, rid: Any, report: str | None, fd: int, pipe: tuple[int, int] | None
    ) -> bool:
        """Give the task to the waiting worker ``pid``; False if it is gone."""
        _pid, back = self.pool[self.pool_fds[pid]]
        what = b"n" if report is None else b"r" + os.fsencode(report)
        try:
            socket.send_fds(back, [what], [fd] if pipe is None else [fd, pipe[1]])
        except OSError:
            self._unpool(pid)
            return False
        self._started(rid, pid, report, fd, pipe)
        return True

    def _unpool(self, pid: int) -> None:
        """Worker ``pid`` will take no other task (gone, or going)."""
        fd = self.pool_fds.pop(pid, None)
        if fd is not None:
            self.pool.pop(fd)[1].close()
        if pid in self.idle:
            self.idle.remove(pid)

    def _waiting(self, fd: int) -> None:
        """A worker's channel is readable: it ended its task (DONE) and waits for
        another, or it is gone (its end closed)."""
        pid, back = self.pool[fd]
        try:
            said = back.recv(16)
        except OSError:
            said = b""
        if not said:
            self._unpool(pid)
            return
        self._task_ended(pid)
        self.idle.append(pid)

    def _again(self) -> bool:
        """In a worker forked here, after its task: whether it runs another task of the
        job.  If ``disco.worker.warm.may_reuse`` allows it, it says so to this process,
        makes itself ready for one (``next_task``; the node's next request may be on its
        way meanwhile, waiting in the channel) and takes the next task's socket.
        If not, or when this process gives it none (its channel closed), it kills its
        own process group, as the node would have at DONE (8.7)."""
        back = self.back
        assert back is not None
        warm = sys.modules["disco.worker.warm"]
        crash_fd = self.crash_fd
        keep = (back.fileno(),) if crash_fd is None else (back.fileno(), crash_fd)
        if warm.may_reuse(keep):
            try:
                back.send(b"i")  # first: the next task's request may come meanwhile
                warm.next_task()
                what, fds, _flags, _addr = socket.recv_fds(back, 65536, 2)
            except OSError:
                what, fds = b"", []
            if what and fds:
                os.dup2(fds[0], 0)
                os.dup2(fds[0], 1)
                os.dup2(fds[0], 2)
                os.close(fds[0])
                report = os.fsdecode(what[1:]) if what[:1] == b"r" else None
                if len(fds) > 1:
                    self._become_reporting_task(report, fds[1])
                    os.close(fds[1])
                else:
                    self._become_task(report)
                return True
        os.killpg(0, signal.SIGKILL)
        return False

    def _child(self, fd: int, report: str | None, pipe: tuple[int, int] | None) -> None:
        """In a task just forked: set it up and run it (never returns).  Its set-up is a
        bound method of this process and its arguments: no closure, request dict or list
        made per task (every object a task makes or touches is a page it copies from
        this process)."""
        crash_fd = self.crash_fd
        reporting = pipe is not None and crash_fd is not None
        keep = (crash_fd,) if reporting else ()
        again = None
        if self.back is not None:  # reusable: ``_again`` after each task
            keep = tuple(sorted((self.back.fileno(), *keep)))
            again = self._again
        if not reporting:
            _run_worker(fd, self.pid, self._become_task, report, keep=keep, again=again)
        assert pipe is not None
        _run_worker(
            fd, self.pid, self._become_reporting_task, report, pipe[1], keep=keep, again=again
        )

    def _open_log(self, prefix: str) -> None:
        me = os.getpid()
        path = "%s-%d-%d-tasks" % (prefix, me, start_time(me))
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            try:
                self.log = os.open(path, flags, 0o644)
            except FileNotFoundError:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                self.log = os.open(path, flags, 0o644)
        except OSError:
            return  # a full disk must not stop the task
        self.log_path = path

    def watched(self) -> list[int]:
        return list(self.by_fd) if self.by_fd else _NONE

    def readable(self, fd: int) -> None:
        channel = self.by_fd.get(fd)
        if channel is not None and not channel.read():
            del self.by_fd[fd]  # at its end: kept (not watched) until the task is reaped

    def timeout(self) -> float:
        """Seconds until a running task's report file is due (``LIVE_REPORT_AFTER``)."""
        for _fd, _path, due in self.pending.values():  # in the order of their due times
            return max(0.0, due - time.monotonic())
        return 10.0

    def tick(self) -> None:
        """Tasks running for ``LIVE_REPORT_AFTER``: their report file is written, and
        their channel read from now on (before, what they write waits in the pipe: a
        short task wakes this process up for nothing but its exit)."""
        pending = self.pending
        if not pending:
            return
        now = time.monotonic()
        for pid, (fd, path, due) in list(pending.items()):  # in the order of due times
            if now < due:
                break
            del pending[pid]
            channel = self.channels[pid] = _TaskChannel(fd, path, self.limit_state)
            if channel.read():
                self.by_fd[fd] = channel
            channel.write_live()

    def reaped(self, pid: int, code: int) -> None:
        self._unpool(pid)
        self._task_ended(pid)
        if self.log is not None:
            _log(self.log, b"-%d\n" % pid)
        _say_exit(self.ctrl, pid, code)

    def _task_ended(self, pid: int) -> None:
        """Worker ``pid``'s task ended (it exited, or waits for another): its report
        pipe read and closed, its report files left if it did not finish."""
        entry = self.pending.pop(pid, None)
        if entry is not None:
            _finish(entry, self.limit_state)
        else:
            channel = self.channels.pop(pid, None)
            if channel is not None:
                self.by_fd.pop(channel.fd, None)
                channel.finish()

    def serve(self) -> None:
        """``_serve`` for a warm process: the same requests, answers and files, in one
        loop whose work per task writes as few pages as it can (each page written here
        after a fork is copied, copy-on-write with the newest task): the node's request
        read by ``_request``, no object per task but a tuple (``pending``), a finished
        task's pipe read and closed by ``_finish``, no wake-up when no task is due a
        report file, the exits answered in the loop."""
        import select

        ctrl = self.ctrl
        cfd = ctrl.fileno()
        rpipe, wpipe = os.pipe()
        os.set_blocking(wpipe, False)
        signal.set_wakeup_fd(wpipe)
        signal.signal(signal.SIGCHLD, _on_child)
        base = [cfd, rpipe]
        pending = self.pending
        by_fd = self.by_fd
        pool = self.pool
        recvmsg = ctrl.recvmsg
        waitpid = os.waitpid
        wnohang = os.WNOHANG
        sel = select.select
        read = os.read
        buf = b""
        fds: list[int] = []
        while True:
            wait = None
            if pending:
                for _fd, _path, due in pending.values():
                    wait = due - time.monotonic()
                    break
                if wait is not None and wait <= 0.0:
                    self.tick()
                    wait = self.timeout() if pending else None
            if by_fd or pool:
                ready = sel(base + list(by_fd) + list(pool), _NONE, _NONE, wait)[0]
                for fd in ready:
                    if fd in pool:
                        self._waiting(fd)
                    elif fd != rpipe and fd != cfd:
                        self.readable(fd)
            else:
                ready = sel(base, _NONE, _NONE, wait)[0]
            if rpipe in ready:
                read(rpipe, 4096)
                while True:
                    try:
                        pid, status = waitpid(-1, wnohang)
                    except ChildProcessError:
                        break
                    if not pid:
                        break
                    self.reaped(pid, os.waitstatus_to_exitcode(status))
            if cfd in ready:
                data, anc, _flags, _addr = recvmsg(65536, _ANCILLARY)
                if not data:
                    return
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.extend(memoryview(payload[: len(payload) - len(payload) % 4]).cast("i"))
                buf = buf + data if buf else data
                if len(buf) > _MAX_REQUEST:
                    return
                while b"\n" in buf:
                    line, _, buf = buf.partition(b"\n")
                    rid, report = _request(line)
                    self.fork_task(rid, report, fds.pop(0))

    def close(self) -> None:
        """This process is leaving: its registry file goes if no task is left."""
        if self.log_path is not None and not self.channels and not self.pending:
            try:
                os.remove(self.log_path)
            except OSError:
                pass


#: A running task's report file is written by its warm process after this many seconds.
LIVE_REPORT_AFTER = 0.5


_LIMIT_STATES: dict[tuple[int, str], bytes] = {}


def _limit_state(limit: tuple[int, str]) -> bytes:
    """The report's JSON that holds only the memory limit (made once per limit)."""
    state = _LIMIT_STATES.get(limit)
    if state is None:
        state = json.dumps({"max_mem": limit[0], "max_mem_setting": limit[1]}).encode()
        _LIMIT_STATES[limit] = state
    return state


def _planned_limit() -> tuple[int, str] | None:
    """``(bytes, setting)`` of the memory limit this warm process worked out for its
    tasks (``disco.worker.taskrun.plan_memory_limit``), if any."""
    taskrun = sys.modules.get("disco.worker.taskrun")
    planned = getattr(taskrun, "_planned_limit", None)
    return planned[1] if planned is not None else None


def _on_child(signum: int, frame: Any) -> None:
    """``SIGCHLD``: nothing (its wake-up byte in ``serve``'s pipe is what counts)."""


def _request(line: bytes) -> tuple[Any, str | None]:
    """``(id, report)`` of a node's request ``{"id": n, "report": "<path>" or null}``:
    the bytes ``json.dumps`` makes for an ASCII path read by slicing (no dict, no
    decoder); anything else by ``_decode``."""
    if line[:7] == b'{"id": ' and line.isascii() and b"\\" not in line:
        i = line.find(b",", 7)
        if i > 7 and line[7:i].isdigit():
            rest = line[i:]
            if rest == b', "report": null}':
                return int(line[7:i]), None
            path = rest[13:-2]
            if len(rest) > 14 and rest[:13] == b', "report": "' and rest[-2:] == b'"}':
                if b'"' in path:
                    return _request_json(line)
                return int(line[7:i]), path.decode("ascii")
    return _request_json(line)


def _request_json(line: bytes) -> tuple[Any, str | None]:
    req = _decode(line)
    return req["id"], req.get("report")


def _finish(entry: tuple[int, str, float], state: bytes) -> None:
    """A reaped task that never got a ``_TaskChannel``: its pipe read and closed; when
    it finished (its last record ``\\0D``) and wrote no crash text (every line a
    record), nothing else; otherwise ``_TaskChannel.finish`` leaves its files."""
    fd, path, _due = entry
    try:
        data = os.read(fd, 65536)
    except OSError:
        data = b""
    if (
        data[-3:] == b"\0D\n"
        and data[:1] == b"\0"
        and len(data) < 65536
        and data.count(b"\n\0") == data.count(b"\n") - 1
    ):
        os.close(fd)
        return
    channel = _TaskChannel(fd, path, state)
    if data:
        channel._take(data)
    channel.finish()


class _TaskChannel:
    """A warm process's end of one task's pipe (``disco.worker.report.use_channel``):
    the report's latest state and the crash handler's text, kept until the task ends."""

    __slots__ = ("fd", "path", "due", "state", "crash", "rest", "end", "live")

    def __init__(self, fd: int, path: str, state: bytes = b"") -> None:
        self.fd = fd
        self.path = path
        self.due = time.monotonic() + LIVE_REPORT_AFTER
        # the report's latest JSON; first the memory limit the task applies (planned
        # here: ``_limit_state``)
        self.state = state
        self.crash = bytearray()  # faulthandler's output
        self.rest = b""  # an unfinished line
        self.end = b""  # b"D": the task finished; b"F": it wrote its failure report
        self.live = False  # the report file written while the task runs
        os.set_blocking(fd, False)

    def read(self) -> bool:
        """Take what the task wrote; ``False`` at the end of the pipe."""
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not data:
                return False
            self._take(data)

    def _take(self, data: bytes) -> None:
        *lines, self.rest = (self.rest + data).split(b"\n")
        for line in lines:
            if line[:1] != b"\0":
                self.crash += line + b"\n"
            elif line == b"\0D" or line == b"\0F":
                self.end = line[1:]
            else:
                self.state = line[1:]
                if self.live:
                    self.write_live()

    def write_live(self) -> None:
        self.live = True
        if self.state:
            _write_file(self.path, self.state)

    def finish(self) -> None:
        """The task has been reaped: leave the files the node will read, if any."""
        self.read()
        os.close(self.fd)
        if self.rest[:1] not in (b"", b"\0"):
            self.crash += self.rest
        if self.end == b"D":
            if self.live:
                try:
                    os.remove(self.path)
                except OSError:
                    pass
            return
        if self.state and self.end != b"F":
            _write_file(self.path, self.state)
        if self.crash:
            _write_file(self.path + ".crash", bytes(self.crash))


def _remove(path: str | None) -> None:
    if path is not None:
        try:
            os.remove(path)
        except OSError:
            pass


def _write_file(path: str, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            _append(fd, data)
        finally:
            os.close(fd)
    except OSError:
        pass  # reporting never fails the task


def _log(fd: int, line: bytes) -> None:
    try:
        os.write(fd, line)  # O_APPEND: one write, whole
    except OSError:
        pass  # a full disk must not stop the task


def _append(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _warm_main(req: dict[str, Any], sock: socket.socket, zygote: int) -> None:
    """The warm process: become the job's worker home, load the job, fork its tasks."""
    die_with_parent(zygote)
    _reset_signals()
    os.setpgid(0, 0)  # not in the zygote's group (a kill of a worker's group misses it)
    # Not niced itself: it only forks, reaps and relays, and each task waits for that
    # (behind the nice-19 tasks it would wait for a core); each task is niced (8.1)
    # first thing in the child (``_WarmProcess.setup``).
    env = {k: v for k, v in req["env"].items() if k != _REPORT_ENV}
    _become_worker_home(req["cwd"], env)
    from disco.task import preload

    preload(req["jobfile"])
    _freeze()
    _trim_heap()
    # Not in the job home between tasks: a finished, killed or purged job leaves no
    # process there (each task goes back to it: _WarmProcess.setup).
    os.chdir("/")
    _trim_fork_hooks()
    forker = _WarmProcess(sock, req["cwd"], req.get("registry"), bool(req.get("reuse")))
    try:
        forker.serve()
    finally:
        forker.close()


def _trim_heap() -> None:
    """Give the C heap's free pages back (glibc ``malloc_trim``): every page mapped in
    this process is one more page table entry that each fork copies and each task's
    exit drops (about 0.8 MB of a warm process's 13.7)."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc


#: ``(function, its own code)`` of the at-fork hooks ``_trim_fork_hooks`` replaced.
_TRIMMED: list[tuple[Any, Any]] = []


def _guarded_hook(
    _warm: int = 0, _getppid: Any = None, _cheap: Any = None, _whole: Any = None
) -> None:
    # The code of a trimmed at-fork hook (its defaults set by ``_trim_fork_hooks``): in
    # a task of the warm process ``_warm``, only ``_cheap`` (if any); in any other
    # child (a task's own fork), the hook's own code, ``_whole``.
    if _getppid() != _warm:
        _whole()
    elif _cheap is not None:
        _cheap()


def _trim_fork_hooks() -> None:
    """In a warm process with one thread: make the at-fork hooks of ``threading`` and
    ``logging`` that run in every forked task do only what they do there.

    With one thread, and none of its locks held (this process then only runs
    ``_serve``), ``threading``'s hook rebuilds the state a task already has (its one
    thread, with the same ident; fresh locks for free ones), and ``logging``'s resets
    the locks of handlers nobody holds, then releases the module lock its ``before``
    hook took.  Run in every task, the two touched about 130 pages (copy-on-write
    faults) for nothing.  Each hook's code is replaced by ``_guarded_hook``'s, which
    looks at its parent: in a task forked here, nothing (``threading``) or only the
    module lock made new (``logging``, its ``before`` hook took it); in the child of
    a task's own fork (job code with threads), the hook's own code.  (Before, each task
    registered an at-fork hook that put the hooks back: about 20 faults per task.)"""
    if "threading" not in sys.modules:
        return
    import _thread
    import threading
    import types

    if threading.active_count() != 1 or _thread._count() != 0:
        return
    hooks: list[tuple[Any, str, Any]] = [(threading, "_after_fork", None)]
    if "logging" in sys.modules:
        logging = sys.modules["logging"]
        lock = getattr(logging, "_lock", None)
        hooks.append(
            (logging, "_after_at_fork_child_reinit_locks", getattr(lock, "_at_fork_reinit", 0))
        )
    me = os.getpid()
    for module, name, cheap in hooks:
        func = getattr(module, name, None)
        code = getattr(func, "__code__", None)
        if code is None or code.co_argcount or code.co_freevars or code.co_flags & 0x0C:
            continue  # not the hook this Python version is known to have
        if cheap is not None and (cheap == 0 or set(code.co_names) != _LOGGING_HOOK_NAMES):
            continue
        whole = types.FunctionType(code, func.__globals__, name)
        _TRIMMED.append((func, code))
        func.__defaults__ = (me, os.getppid, cheap, whole)
        func.__code__ = _guarded_hook.__code__


#: The names logging's at-fork hook (3.11-3.13) uses: the handlers' set and the lock.
_LOGGING_HOOK_NAMES = {"_at_fork_reinit_lock_weakset", "_at_fork_reinit", "_lock"}


def _serve(forker: _Forker) -> None:
    """Read requests (one JSON line and one fd each) from ``forker.ctrl``, fork, reap.

    Lean per request (see ``_WarmProcess.fork_one``): descriptors as ints, the lists
    ``select`` takes made only when tasks' channels are watched, the socket's message
    and descriptors read without ``socket.recv_fds``'s array, a request decoded by
    ``json``'s C scanner."""
    import select

    ctrl = forker.ctrl
    cfd = ctrl.fileno()
    rpipe, wpipe = os.pipe()
    os.set_blocking(wpipe, False)
    signal.set_wakeup_fd(wpipe)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    base = [cfd, rpipe]
    buf = b""
    fds: list[int] = []
    while True:
        extra = forker.watched()
        ready = select.select(base + extra if extra else base, _NONE, _NONE, forker.timeout())[0]
        if extra:
            for fd in ready:
                if fd != rpipe and fd != cfd:
                    forker.readable(fd)
        forker.tick()
        if rpipe in ready:
            os.read(rpipe, 4096)
            _reap(forker)
        if cfd in ready:
            data, anc, _flags, _addr = ctrl.recvmsg(65536, _ANCILLARY)
            if not data:
                return
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.extend(memoryview(payload[: len(payload) - len(payload) % 4]).cast("i"))
            buf += data
            if len(buf) > _MAX_REQUEST:
                return
            while b"\n" in buf:
                line, _, buf = buf.partition(b"\n")
                forker.request(_decode(line), fds.pop(0))


_NONE: list[Any] = []  # never changed
_ANCILLARY = socket.CMSG_LEN(8 * 4)  # room for 8 descriptors (as ``socket.recv_fds``)
_SCAN = json.JSONDecoder().scan_once


def _decode(line: bytes) -> Any:
    """``json.loads(line)`` for the node's one-line objects, by the C scanner alone
    (``json.loads`` runs its Python-level decoder, a regular expression and more)."""
    text = line.decode()
    try:
        obj, end = _SCAN(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        return json.loads(line)  # anything else: its error, or whitespace around
    return obj


def _exited_children() -> Iterator[tuple[int, int]]:
    """``(pid, exit code)`` of each child process that has ended, without waiting."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def _reap(forker: _Forker) -> None:
    for pid, code in _exited_children():
        forker.reaped(pid, code)


def _say(ctrl: socket.socket, msg: dict[str, Any]) -> None:
    ctrl.sendall(json.dumps(msg).encode() + b"\n")


def _say_pid(ctrl: socket.socket, rid: Any, pid: int) -> None:
    """``_say(ctrl, {"id": rid, "pid": pid})``, the same bytes without ``json``."""
    if type(rid) is int:
        ctrl.sendall(b'{"id": %d, "pid": %d}\n' % (rid, pid))
    else:
        _say(ctrl, {"id": rid, "pid": pid})


def _say_exit(ctrl: socket.socket, pid: int, code: int) -> None:
    """``_say(ctrl, {"exit": pid, "code": code})``, the same bytes without ``json``."""
    ctrl.sendall(b'{"exit": %d, "code": %d}\n' % (pid, code))


def _start_time(pid: int) -> int:
    """``disco.node.orphans.start_time`` without file objects (one per task forked)."""
    try:
        fd = os.open(b"/proc/%d/stat" % pid, os.O_RDONLY | os.O_CLOEXEC)
        try:
            data = os.read(fd, 4096)
        finally:
            os.close(fd)
    except OSError:
        return 0
    # After the command's ")": field 3 (state) of proc(5), then starttime is field 22
    # (found by ``find``: a ``split`` made 20 objects to read one).
    i = data.rfind(b")") + 2
    if data[i : i + 1] in (b"Z", b"X", b""):
        return 0
    for _ in range(19):
        i = data.find(b" ", i) + 1
        if not i:
            return 0
    end = data.find(b" ", i)
    return int(data[i:end] if end > 0 else data[i:])


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    _drop_bind_now()
    ready_to_fork()  # the warm processes and workers forked later call die_with_parent
    if len(argv) > 1:  # the node's pid: die with it (``disco.node.zygote.Zygote.start``)
        die_with_parent(int(argv[1]))
    ctrl = socket.socket(fileno=int(argv[0]))
    _preload()
    _rehearse()
    _freeze()
    _serve(_Zygote(ctrl))


if __name__ == "__main__":
    main()
