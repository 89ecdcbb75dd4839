"""Outside services the scheme tests start on loopback: moto's S3 server, redis-server.

Each runs as a child process on a free 127.0.0.1 port and is killed at the end; waiting
for it polls with a deadline.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from disco.test import poll_for
from tests.conftest import free_port


def _wait(proc: subprocess.Popen, ready: Callable[[], bool], what: str, timeout: float) -> None:
    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError("%s exited with status %s" % (what, proc.returncode))
        return ready()

    poll_for(answers, timeout, "%s to answer" % what, interval=0.05)


@contextmanager
def _running(args: list[str], ready: Callable[[], bool], what: str, cwd: str) -> Iterator[None]:
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(proc, ready, what, 30.0)
        yield
    finally:
        proc.kill()
        proc.wait(10)


@contextmanager
def moto_s3(cwd: str) -> Iterator[str]:
    """moto's standalone S3 server; yields its endpoint URL."""
    port = free_port()
    url = "http://127.0.0.1:%d" % port

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return True
        except OSError:
            return False

    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _running(args, ready, "moto S3 server", cwd):
        yield url


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


@contextmanager
def redis_server(cwd: str) -> Iterator[tuple[str, int]]:
    """A throw-away redis-server (no persistence); yields ``(host, port)``."""
    port = free_port()

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    exe = redis_server_path()
    assert exe is not None
    args = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
            "--dir", cwd]  # fmt: skip
    with _running(args, ready, "redis-server", cwd):
        yield "127.0.0.1", port
