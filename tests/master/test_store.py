"""Durable state across master restarts (master-api.md 13.15) and the config table (3.4)."""

from __future__ import annotations

import json
import os

import pytest

from disco.embedded import EmbeddedMaster
from disco.master.store import RESTART_EVENT, ConfigError, Store, expand_host_spec, expand_table
from tests.conftest import child_pids, poll_for

from .packs import v2_dict
from .test_api import Client


def test_expand_host_spec():
    assert expand_host_spec("node08:12") == ["node08", "node09", "node10", "node11", "node12"]
    assert expand_host_spec("n1:3") == ["n1", "n2", "n3"]
    assert expand_host_spec("master") == ["master"]
    with pytest.raises(ConfigError):
        expand_host_spec("a:b")
    with pytest.raises(ConfigError, match="duplicate nodes"):
        expand_table([["n1:2", "1"], ["n2", "3"]])
    with pytest.raises(ConfigError, match="invalid config"):
        expand_table([["n1", "many"]])


def test_config_file_legacy_and_default(tmp_path):
    path = tmp_path / "disco.config"
    store = Store(str(tmp_path / "root"), str(path))
    config = store.load_config()
    assert len(config.hosts) == 1 and config.hosts[0][0] == "localhost"
    assert json.loads(path.read_text())["blacklist"] == []  # 3.4: written as 0.5 did
    path.write_text(json.dumps([["a", "2"]]))  # the legacy bare list
    config = store.load_config()
    assert (config.hosts, config.blacklist, config.gc_blacklist) == ([["a", "2"]], [], [])
    store.close()


def test_restart_keeps_finished_jobs_and_restores_running_ones(tmp_path):
    root = tmp_path / "disco"
    before = child_pids()
    with EmbeddedMaster(root=root, export_env=False, retry_delay=0.0) as m:
        client = Client(m)
        ready = client.submit(v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]))
        results = client.wait(ready)[1]
        running = client.submit(
            v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"MODE": "sleep"}
        )
        lost = client.submit(
            v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"MODE": "sleep"}
        )
        lost_pack = os.path.join(m.server.runtime.job_dir(lost), "jobfile")
        client.post("save_settings", {"max_failure_rate": "5", "accept_new_jobs": "1"})
        client.post("save_config_table", [["localhost", "3"], ["127.0.0.2", "1"]])
        client.post("blacklist", "127.0.0.2")
        info = client.get("/disco/ctrl/jobinfo?name=" + ready)
        events = client.events(ready)
        pack = client.request("/disco/ctrl/parameters?name=" + ready)[2]
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")
    os.remove(lost_pack)  # while the master is down
    with EmbeddedMaster(root=root, export_env=False, retry_delay=0.0) as m:
        client = Client(m)
        assert client.get("/disco/ctrl/jobinfo?name=" + ready) == info
        assert client.post("get_results", [0, [ready]]) == [[ready, ["ready", results]]]
        assert client.events(ready) == events
        assert client.request("/disco/ctrl/parameters?name=" + ready)[2] == pack
        assert client.get("/disco/ctrl/get_stageresults?name=%s&stage=map" % ready) == results
        # a running job carries on (tests/faults/test_master_restart.py has the details)
        assert client.get("/disco/ctrl/jobinfo?name=" + running)["active"] == "active"
        assert any("Job restored after a master restart" in e[2] for e in client.events(running))
        client.post("kill_job", running)
        assert client.post("get_results", [1000, [running]]) == [[running, ["dead", []]]]
        # one whose job pack is gone cannot be rebuilt: dead, with an event saying why
        assert client.post("get_results", [1000, [lost]]) == [[lost, ["dead", []]]]
        assert client.events(lost)[-1][2].startswith(RESTART_EVENT + ": its job pack")
        assert client.get("/disco/ctrl/jobinfo?name=" + lost)["active"] == "dead"
        assert [row[2] for row in client.get("/disco/ctrl/joblist")] == [lost, running, ready]
        assert client.get("/disco/ctrl/get_settings") == {
            "max_failure_rate": 5,
            "accept_new_jobs": 1,
        }
        assert client.get("/disco/ctrl/load_config_table") == [
            ["localhost", "3"],
            ["127.0.0.2", "1"],
        ]
        assert client.get("/disco/ctrl/get_blacklist") == ["127.0.0.2"]
        # the restarted master still runs jobs, and names stay unique
        again = client.submit(v2_dict([["map", "split", False]], [[0, 0, ["raw://b"]]]))
        assert again not in (ready, running) and client.wait(again)[0] == "ready"


def test_only_a_store_that_is_not_durable_keeps_its_file_lock(tmp_path):
    """A store that is not durable (never opened by another connection) takes SQLite's
    lock once and keeps it: another connection cannot read it while it is open.  A
    durable store locks per transaction (WAL): others read it."""
    import sqlite3

    scratch = Store(str(tmp_path / "scratch"), str(tmp_path / "c1"), durable=False)
    durable = Store(str(tmp_path / "durable"), str(tmp_path / "c2"))
    try:
        assert scratch._db.execute("PRAGMA locking_mode").fetchone()[0] == "exclusive"
        assert durable._db.execute("PRAGMA locking_mode").fetchone()[0] == "normal"
        other = sqlite3.connect(durable.path, timeout=0)
        assert other.execute("SELECT key FROM settings").fetchall()
        other.close()
        other = sqlite3.connect(scratch.path, timeout=0)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("SELECT key FROM settings").fetchall()
        other.close()
    finally:
        scratch.close()
        durable.close()
