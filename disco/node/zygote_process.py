"""The zygote process: a pre-started Python that forks task workers on request.

Run as ``python -m disco.node.zygote_process <fd>`` by ``disco.node.zygote.Zygote``, which
documents the wire between the two.  This module imports no asyncio and nothing the
worker does not need, so the zygote is ready quickly; ``_preload`` imports what every
Python task imports, so that a forked worker starts in milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from typing import Any

from disco.node.orphans import die_with_parent

_MAX_REQUEST = 4 << 20


def _preload() -> None:
    # What every Python task imports; after this a fork starts a worker in milliseconds.
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


def _child(cwd: str, env: dict[str, str], fd: int, ctrl: socket.socket, zygote: int) -> None:
    """In the forked child: become the worker bootstrap would have started."""
    code = 1
    try:
        die_with_parent(zygote)  # the zygote dies with the master: so do its workers
        ctrl.close()
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        os.nice(19)
        os.chdir(cwd)
        for target in (0, 1, 2):
            os.dup2(fd, target)
        os.close(fd)
        os.environ.clear()
        os.environ.update(env)
        # What ``python -m disco.worker`` in the job home would have: the job home
        # first (not the zygote's own working directory), then PYTHONPATH.
        extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        sys.path[0:1] = [os.getcwd(), *extra]
        sys.argv = ["-m"]
        import random

        random.seed()
        from disco.worker import Worker

        Worker.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    ctrl = socket.socket(fileno=int(argv[0]))
    _preload()
    import select

    rpipe, wpipe = os.pipe()
    os.set_blocking(wpipe, False)
    signal.set_wakeup_fd(wpipe)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    buf = b""
    fds: list[int] = []
    while True:
        ready, _, _ = select.select([ctrl, rpipe], [], [])
        if rpipe in ready:
            os.read(rpipe, 4096)
            _reap(ctrl)
        if ctrl in ready:
            data, newfds, _flags, _addr = socket.recv_fds(ctrl, 65536, 8)
            if not data:
                return
            buf += data
            fds.extend(newfds)
            if len(buf) > _MAX_REQUEST:
                return
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                req = json.loads(line)
                fd = fds.pop(0)
                _fork_one(req, fd, ctrl)


def _fork_one(req: dict[str, Any], fd: int, ctrl: socket.socket) -> None:
    zygote = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(fd)
        _say(ctrl, {"id": req["id"], "error": str(exc)})
        return
    if pid == 0:
        _child(req["cwd"], req["env"], fd, ctrl, zygote)
    os.close(fd)
    _say(ctrl, {"id": req["id"], "pid": pid})


def _reap(ctrl: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _say(ctrl, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _say(ctrl: socket.socket, msg: dict[str, Any]) -> None:
    ctrl.sendall(json.dumps(msg).encode() + b"\n")


if __name__ == "__main__":
    main()
