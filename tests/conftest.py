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
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from disco.embedded import EmbeddedMaster
from disco.servererrors import SERVER_ERRORS
from disco.test import poll_for

__all__ = [
    "child_pids",
    "clean_disco_env",
    "environ_without_disco",
    "free_port",
    "live_processes",
    "poll_for",
    "run_python",
]


def live_processes() -> dict[int, list[str]]:
    """Every live (non-zombie) process: pid -> the fields of ``/proc/<pid>/stat`` after
    the command name (``[state, ppid, pgrp, session, ...]``)."""
    found: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry, "rb") as f:
                    fields = f.read().decode("ascii", "replace").rsplit(")", 1)[-1].split()
            except OSError:
                continue
            if len(fields) > 3 and fields[0] != "Z":
                found[int(entry)] = fields
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` now (the kernel picks it)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(handler: type, host: str = "127.0.0.1") -> Iterator[ThreadingHTTPServer]:
    """An ``http.server`` handler class served by a thread on a free port of ``host``;
    shut down and closed on exit."""
    httpd = ThreadingHTTPServer((host, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def self_signed_cert(folder: Path, alt_names: str = "DNS:localhost") -> tuple[str, str]:
    """A self-signed certificate for ``localhost`` (and ``alt_names``) made by openssl in
    ``folder``: ``(cert path, key path)``."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=" + alt_names],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


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


@pytest.fixture
def inputs_server() -> Iterator[Any]:
    """``disco.test``'s HTTP server for job inputs: paths with ``fail`` answer 500 (dead
    replicas); ``flaky-<n>-<rest>`` answers 500 to the first ``n`` requests, then ``k*10``
    when ``rest`` starts with a number ``k`` (``flaky-2-400-tag``), else ``flaky line``;
    a number ``k`` answers ``k*10``."""
    from disco.test import FailedReply, TestServer

    counts: dict[str, int] = {}
    lock = threading.Lock()

    def serve(path: str) -> str:
        if "fail" in path:
            raise FailedReply()
        if path.startswith("flaky-"):
            _flaky, n, rest = path.split("-", 2)
            with lock:
                counts[path] = counts.get(path, 0) + 1
                if counts[path] <= int(n):
                    raise FailedReply()
            k = rest.split("-")[0]
            return "%d\n" % (int(k) * 10) if k.isdigit() else "flaky line\n"
        return "%d\n" % (int(path) * 10)

    srv = TestServer.create(("127.0.0.1", 0), serve)
    srv.start()
    yield srv
    srv.stop()


# -- Dask (issue 9): a real scheduler and real `dask worker`s on loopback addresses --------
DASK_HOSTS = ["127.0.0.2", "127.0.0.2", "127.0.0.3"]  # one `dask worker` process each


def start_dask_cluster(root: Path, hosts: list[str] | None = None) -> Any:
    """A ``tests.backends.dask_cluster.DaskCluster`` started with workers on ``hosts``."""
    from tests.backends.dask_cluster import DaskCluster

    cluster = DaskCluster(root)
    try:
        return cluster.start(list(DASK_HOSTS if hosts is None else hosts))
    except BaseException:
        cluster.stop()
        raise


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A Dask cluster shared by a module's tests: two workers on 127.0.0.2, one on
    127.0.0.3 (2 threads each).  Tests that kill or add workers start their own."""
    cluster = start_dask_cluster(tmp_path_factory.mktemp("dask"))
    yield cluster
    cluster.stop()


def dask_master(
    root: Path, cluster: Any, hosts: set[str] | None = None, settings: dict[str, str] | None = None
) -> EmbeddedMaster:
    """An embedded master on the Dask cluster (with ``settings`` more), once its nodes are
    ``hosts`` (default: the hosts of the cluster's live workers)."""
    wanted = hosts or {w.host for w in cluster.workers if w.alive}
    m = EmbeddedMaster(
        root=root,
        retry_delay=0.0,
        settings={**(settings or {}), "DISCO_DASK_SCHEDULER": cluster.address},
    ).start()
    try:
        poll_for(
            lambda: wanted <= {h for h, n in m.disco.nodeinfo().items() if n["connected"]},
            60.0,
            "the master to see the Dask nodes %s" % sorted(wanted),
        )
    except BaseException:
        m.stop()
        raise
    return m


def wait_children_gone(before: set[int], timeout: float = 30.0) -> None:
    """Wait until this process has no live child beyond ``before``; on timeout the error
    names the processes left (their command lines and states)."""
    try:
        poll_for(lambda: not (child_pids() - before), timeout, "worker processes to exit")
    except AssertionError as exc:
        left = []
        for pid in sorted(child_pids() - before):
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
                with open("/proc/%d/stat" % pid) as f:
                    state = f.read().rsplit(")", 1)[-1].split()[0]
            except OSError:
                continue
            left.append("%d (%s) %s" % (pid, state, cmd))
        raise AssertionError("%s; left: %s" % (exc, "; ".join(left) or "none by now")) from None


@pytest.fixture
def on_dask(dask_cluster: Any, tmp_path: Path) -> Iterator[EmbeddedMaster]:
    """A master on the module's Dask cluster; its worker processes are gone afterwards."""
    before = child_pids()
    m = dask_master(tmp_path / "disco", dask_cluster)
    yield m
    m.stop()
    wait_children_gone(before)


@pytest.fixture(params=["local", "dask"])
def any_master(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EmbeddedMaster]:
    """The same test on the local backend (``master``) and on the Dask backend."""
    before = child_pids()
    if request.param == "local":
        with EmbeddedMaster(root=tmp_path / "disco", retry_delay=0.0) as m:
            yield m
    else:
        cluster = request.getfixturevalue("dask_cluster")
        before = child_pids()
        m = dask_master(tmp_path / "disco", cluster)
        try:
            yield m
        finally:
            m.stop()
    _assert_no_leaked_workers(before)
