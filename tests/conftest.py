"""Shared fixtures: real masters on loopback with real worker processes.

``master``: an embedded master (aiohttp on 127.0.0.1, a free port) with the local
backend and one node, data in the test's tmp dir.  ``cluster``: the same with three
simulated nodes on 127.0.0.1 ("localhost"), 127.0.0.2 and 127.0.0.3.  At teardown every
worker process must be gone.

Every test fails when a server of the project (a master, a node data server, a blob
upload server) running in this process answered ``500`` during it: bad input must get a
4xx, a 500 is a bug (``disco.servererrors``).  Tests that provoke a server-side fault on
purpose (a full disk, a failed replication), where 0.5 answers 500 too, say so with
``@pytest.mark.server_errors_expected``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from disco.embedded import EmbeddedMaster
from disco.servererrors import SERVER_ERRORS
from disco.test import poll_for

__all__ = [
    "child_pids",
    "clean_disco_env",
    "environ_without_disco",
    "free_port",
    "poll_for",
    "run_python",
]


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def environ_without_disco(**extra: str) -> dict[str, str]:
    """This process's environment without any DISCO_/DDFS_ setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCO_", "DDFS_"))}
    env.update(extra)
    return env


def run_python(*args: str, cwd: str, env: dict[str, str], timeout: float = 300) -> str:
    """Run this Python with ``args`` in ``cwd``; assert it succeeded; its stdout."""
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def clean_disco_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> int:
    """Environment of a test that starts its own master daemon: no DISCO_/DDFS_ setting of
    the caller leaks in, home and root under ``tmp_path``, a free DISCO_PORT on
    127.0.0.1 (returned), no settings file; ``extra`` adds or overrides settings."""
    for key in list(os.environ):
        if key.startswith(("DISCO_", "DDFS_")):
            monkeypatch.delenv(key)
    port = free_port()
    env = {
        "DISCO_HOME": str(tmp_path / "home"),
        "DISCO_ROOT": str(tmp_path / "root"),
        "DISCO_MASTER_HOST": "127.0.0.1",
        "DISCO_PORT": str(port),
        "DISCO_SETTINGS_FILE": "",
        **extra,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return port


def child_pids() -> set[int]:
    """PIDs of live (non-zombie) processes whose parent is this test process."""
    me = os.getpid()
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and fields[0] != "Z" and int(fields[1]) == me:
            found.add(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_server_errors(request) -> Iterator[None]:
    """Fail the test if a server in this process answered 500 during it."""
    before = SERVER_ERRORS.count
    yield
    if request.node.get_closest_marker("server_errors_expected") is None:
        served = SERVER_ERRORS.since(before)
        assert not served, "the server answered 500 (a bug) to: %s" % ", ".join(served)


def _assert_no_leaked_workers(before: set[int]) -> None:
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


@pytest.fixture
def master(tmp_path) -> Iterator[EmbeddedMaster]:
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", retry_delay=0.0) as m:
        yield m
    _assert_no_leaked_workers(before)


@pytest.fixture
def cluster(tmp_path) -> Iterator[EmbeddedMaster]:
    before = child_pids()
    nodes = [("localhost", 2), ("127.0.0.2", 2), ("127.0.0.3", 2)]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes, retry_delay=0.0) as m:
        yield m
    _assert_no_leaked_workers(before)
