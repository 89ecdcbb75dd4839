"""Where a master listens: loopback unless ``DISCO_MASTER_HOST`` says otherwise, and the
URLs of results still resolve (docs/security.md, "Opening the master to a cluster")."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from disco import comm
from disco.cli.daemon import Master
from disco.cli.disco import main
from disco.core import Disco, Job, result_iterator
from disco.embedded import EmbeddedMaster
from disco.settings import DiscoSettings
from disco.util import urlresolve
from tests.conftest import free_port, poll_for
from tests.security.helpers import http, listening, outside_address, refuses

pytestmark = pytest.mark.timeout(120)


def count_map(line, params):
    for word in line.split():
        yield word, 1


def sum_reduce(iter, params):
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)


INPUTS = ["raw://a b a", "raw://b c a"]
COUNTS = {"a": 3, "b": 2, "c": 1}


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No Disco setting from outside; a private root, free ports, DISCO_MASTER_HOST unset."""
    for key in list(os.environ):
        if key.startswith(("DISCO_", "DDFS_")):
            monkeypatch.delenv(key)
    port, put_port = free_port(), free_port()
    monkeypatch.setenv("DISCO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DISCO_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("DISCO_PORT", str(port))
    monkeypatch.setenv("DDFS_PUT_PORT", str(put_port))
    monkeypatch.setenv("DISCO_SETTINGS_FILE", "")
    yield port, put_port
    master = Master(DiscoSettings())
    if master.running:
        master.stop()


def run_wordcount(master: str) -> list[str]:
    job = Job(master=master).run(input=INPUTS, map=count_map, reduce=sum_reduce)
    results = job.wait(poll_interval=0.1)
    return [url for entry in results for url in ([entry] if isinstance(entry, str) else entry)]


def read_over_http(results: list[str]) -> dict[str, int]:
    """Read every result through the node data servers (never as a local file)."""
    counts: dict[str, int] = {}
    for index in results:
        assert urlresolve(index).startswith("http://")
        with comm.open_remote(index) as f:  # the index file, over HTTP
            lines = f.read().decode().split()
        assert lines
    for word, count in result_iterator(results):
        counts[word] = count
    return counts


def test_disco_start_binds_loopback_unless_told(clean_env, capsys) -> None:
    port, put_port = clean_env
    assert DiscoSettings()["DISCO_MASTER_HOST"] == "127.0.0.1"
    assert main(["start"]) == 0
    pid = Master(DiscoSettings()).pid
    assert pid
    bound = listening(pid)
    assert ("127.0.0.1", port) in bound and ("127.0.0.1", put_port) in bound
    assert all(address.startswith("127.") for address, _ in bound), bound
    outside = outside_address()
    if outside is not None:  # this machine has a network address: nothing answers there
        assert refuses(outside, port) and refuses(outside, put_port)
    disco = Disco()  # DISCO_MASTER defaults to http://127.0.0.1:DISCO_PORT
    assert disco.master == "http://127.0.0.1:%d" % port
    assert list(disco.nodeinfo()) == ["localhost"]  # the local node keeps its name
    results = run_wordcount(disco.master)
    assert all(url.startswith("dir://localhost/") for url in results)
    assert read_over_http(results) == COUNTS
    assert main(["stop"]) == 0


def test_disco_master_host_opens_that_address(clean_env, monkeypatch) -> None:
    port, put_port = clean_env
    monkeypatch.setenv("DISCO_MASTER_HOST", "127.0.0.2")  # stands for a LAN address
    assert main(["start"]) == 0
    pid = Master(DiscoSettings()).pid
    assert pid
    bound = listening(pid)
    assert ("127.0.0.2", port) in bound
    # the node "localhost" is not at 127.0.0.2: it gets its own data server, so the
    # disco://localhost/ URLs of results resolve
    assert ("127.0.0.1", port) in bound
    status, _ = http("GET", "http://127.0.0.1:%d/disco/version" % port)
    assert status == 404  # a node data server, not the master
    disco = Disco()
    assert disco.master == "http://127.0.0.2:%d" % port
    results = run_wordcount(disco.master)
    assert all(url.startswith("dir://localhost/") for url in results)
    assert read_over_http(results) == COUNTS
    assert main(["stop"]) == 0


def test_python_m_disco_master_binds_loopback(clean_env) -> None:
    port, put_port = clean_env
    proc = subprocess.Popen(
        [sys.executable, "-m", "disco.master"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        poll_for(lambda: http("GET", "http://127.0.0.1:%d/disco/version" % port)[0] == 200, 30)
        bound = listening(proc.pid)
        assert ("127.0.0.1", port) in bound and ("127.0.0.1", put_port) in bound
        assert all(address.startswith("127.") for address, _ in bound), bound
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def test_embedded_master_binds_loopback(tmp_path) -> None:
    with EmbeddedMaster(root=tmp_path / "disco", export_env=False) as master:
        assert master.url == "http://127.0.0.1:%d" % master.port
        assert ("127.0.0.1", master.port) in listening(os.getpid())


def test_a_node_named_after_this_machine_resolves(tmp_path) -> None:
    """A config table naming this machine (0.5's habit) still gives readable results."""
    name = socket.gethostname()
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[(name, 2)]) as m:
        results = run_wordcount(m.url)
        assert all(url.startswith("dir://%s/" % name) for url in results)
        assert read_over_http(results) == COUNTS
