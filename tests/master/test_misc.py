"""Config casting, event log lines, job naming, GC and the ``python -m disco.master`` entry."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from disco.embedded import EmbeddedMaster
from disco.error import DiscoError
from disco.master.config import MasterConfig
from disco.master.events import EventLog, format_line, hash_dir, jobevents
from disco.master.jobdata import parse_index_labels
from disco.settings import DiscoSettings
from tests.conftest import poll_for

from .packs import v2_dict
from .test_api import Client


def settings(tmp_path, **env: str) -> DiscoSettings:
    base = {"DISCO_HOME": str(tmp_path), "DISCO_ROOT": str(tmp_path), "DISCO_SETTINGS_FILE": ""}
    return DiscoSettings(environ={**base, **env})


def test_master_config_from_settings(tmp_path):
    s = settings(tmp_path, DISCO_SCHEDULER="fifo", DISCO_SCHEDULER_ALPHA="0.5", DISCO_GC_AFTER="60")
    config = MasterConfig.from_settings(s, host="127.0.0.1", port=1234)
    assert config.master_url == "http://127.0.0.1:1234"
    assert (config.scheduler, config.alpha, config.gc_after, config.gc_interval) == (
        "fifo",
        0.5,
        60.0,
        12.0,
    )
    assert config.master_root == os.path.join(str(tmp_path), "data", "_disco_8989")
    assert config.put_port == 8990 and config.version == "0.5.4"
    s = settings(tmp_path, DISCO_MASTER="http://master:1234", DISCO_PORT="1234")
    assert (
        MasterConfig.from_settings(s, host="0.0.0.0", port=1234).master_url == "http://master:1234"
    )
    with pytest.raises(DiscoError):
        MasterConfig.from_settings(settings(tmp_path, DISCO_SCHEDULER="lifo"), host="h", port=1)
    with pytest.raises(DiscoError):
        MasterConfig.from_settings(settings(tmp_path, DISCO_GC_AFTER="soon"), host="h", port=1)


def test_event_lines_and_jobevents(tmp_path):
    line = format_line(0.0, "master", 'Created job "X"\nü')
    stamp, host, msg = json.loads(line)
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d", stamp)
    assert line.endswith('","master","Created job \\"X\\"\\n\\u00fc"]\n')
    assert hash_dir("WordCount@6b0:5464e:dc072") == "82"
    log = EventLog(str(tmp_path), "J@1:2:3")
    for i in range(250):
        log.append("master", "event %d" % i)
    log.close()
    log.append("master", "after close")  # 4.2: kept in memory only
    assert len(log.tail) == 200
    with open(log.path) as f:
        assert len(f.readlines()) == 250
    newest = json.loads(jobevents(log.path, list(log.tail), 3))
    assert [e[2] for e in newest] == ["after close", "event 249", "event 248"]
    from_file = json.loads(jobevents(log.path, None, 2))
    assert [e[2] for e in from_file] == ["event 249", "event 248"]
    filtered = json.loads(jobevents(log.path, list(log.tail), 2, "EVENT"))
    assert [e[2] for e in filtered] == ["event 1", "event 0"]  # first matches, newest first
    assert jobevents(log.path, None, 5, "nomatch") == "[]"


def test_parse_index_labels():
    text = "0 disco://h/a 5\n2 disco://h/b 7\n0 disco://h/c 1\n"
    assert parse_index_labels(text) == ((0, 6), (2, 7))
    with pytest.raises(ValueError):
        parse_index_labels("garbage\n")


def test_job_names_are_unique_and_increasing(tmp_path):
    with EmbeddedMaster(root=tmp_path / "d", export_env=False) as m:
        names = m.call(lambda: [m.server.runtime.new_name("P") for _ in range(50)])
    assert len(set(names)) == 50
    fields = [tuple(int(x, 16) for x in n.split("@")[1].split(":")) for n in names]
    assert fields == sorted(fields)
    assert all(re.fullmatch(r"P@[0-9a-f]+:[0-9a-f]+:[0-9a-f]+", n) for n in names)


def test_age_gc_removes_old_job_data(tmp_path):
    with EmbeddedMaster(
        root=tmp_path / "d", export_env=False, settings={"DISCO_GC_AFTER": "3600"}
    ) as m:
        client = Client(m)
        name = client.submit(v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]))
        client.wait(name)
        data_dir = os.path.join(m.server.config.disco_data, "localhost", hash_dir(name), name)
        assert os.path.isdir(data_dir)
        runtime = m.server.runtime

        async def gc():
            return await runtime.gc_once()

        import asyncio

        def run_gc():
            return asyncio.run_coroutine_threadsafe(gc(), m._loop).result(10)

        assert run_gc() == []  # young data is kept
        old = time.time() - 7200
        os.utime(data_dir, (old, old))
        assert run_gc() == [("localhost", name)]
        assert not os.path.exists(data_dir)


def test_gc_runs_on_its_own_every_data_gc_interval(tmp_path):
    """10.6 end to end: with DISCO_GC_AFTER=1 s and DATA_GC_INTERVAL ~1 s the master's
    own GC loop removes a finished job's data; a running job's data is kept."""
    env = {"DISCO_GC_AFTER": "1", "DATA_GC_INTERVAL": "0.0003"}
    with EmbeddedMaster(root=tmp_path / "d", export_env=False, settings=env) as m:
        client = Client(m)
        done = client.submit(v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]))
        client.wait(done)
        running = client.submit(
            v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"MODE": "sleep"}
        )

        def data_dir(name):
            return os.path.join(m.server.config.disco_data, "localhost", hash_dir(name), name)

        poll_for(lambda: os.path.isdir(data_dir(running)), 10, "the running job's home")
        poll_for(lambda: not os.path.exists(data_dir(done)), 10, "the GC loop to remove data")
        assert os.path.isdir(data_dir(running))
        client.post("kill_job", running)


def test_cluster_nodes_pinning_and_node_data_servers(tmp_path):
    nodes = [("localhost", 1), ("127.0.0.2", 1)]
    with EmbeddedMaster(root=tmp_path / "d", export_env=False, retry_delay=0.0) as m:
        client = Client(m)
        client.post("save_config_table", [[h, str(n)] for h, n in nodes])
        inputs = [[0, 0, ["raw://127.0.0.2"]], [0, 0, ["raw://localhost"]]]
        name = client.submit(v2_dict([["map", "split", False]], inputs))
        status, results = client.wait(name)
        assert status == "ready"
        hosts = [r[0].split("/")[2] for r in results]
        assert hosts == ["127.0.0.2", "localhost"]  # 7.3: pinned to the group host
        # the node's own data server answers for 127.0.0.2 (2.9)
        url = "http://127.0.0.2:%d/%s" % (m.port, results[0][0].split("/", 3)[3])
        import urllib.request

        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read().startswith(b"0 disco://127.0.0.2/disco/127.0.0.2/")
        assert client.get("/disco/ctrl/nodeinfo")["127.0.0.2"]["job_ok"] == 1


def test_python_m_disco_master(tmp_path):
    env = dict(os.environ)
    env.update(DISCO_HOME=str(tmp_path), DISCO_ROOT=str(tmp_path), DISCO_SETTINGS_FILE="")
    env.pop("DISCO_MASTER", None)
    pidfile = tmp_path / "master.pid"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "disco.master",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--pidfile",
            str(pidfile),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = None
        deadline = time.monotonic() + 20
        while port is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            found = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            port = int(found.group(1)) if found else None
        assert port, "the master did not report its port"
        assert pidfile.read_text().strip() == str(proc.pid)
        client = type("C", (Client,), {})
        c = client.__new__(client)
        c.url = "http://127.0.0.1:%d" % port
        assert c.get("/disco/version") == "0.5.4"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        poll_for(lambda: not pidfile.exists(), 5, "the pid file to be removed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
