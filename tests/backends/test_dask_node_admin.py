"""Issue 9 on the Dask backend: "nodeinfo, the config table, blacklist/whitelist,
max_workers (default: the Dask threads of that host) and the web pages speak of these
names" (the hosts of the Dask workers), on a real ``dask scheduler`` and ``dask
worker``s bound to 127.0.0.2 and 127.0.0.3."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from disco.core import result_iterator
from disco.job import Job
from tests.backends import dask_jobs as jobs
from tests.backends.test_dask_backend import assignments, word_count
from tests.conftest import (
    child_pids,
    dask_master,
    poll_for,
    start_dask_cluster,
    wait_children_gone,
)

pytestmark = [pytest.mark.dask, pytest.mark.timeout(300)]


@pytest.fixture
def on_dask(dask_cluster: Any, tmp_path: Path) -> Any:
    before = child_pids()
    m = dask_master(tmp_path / "disco", dask_cluster)
    yield m
    m.stop()
    wait_children_gone(before)


def counts(job: Job) -> dict[str, int]:
    return {str(k): int(v) for k, v in result_iterator(job.wait(poll_interval=0.1))}


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as reply:
        return json.loads(reply.read())


def max_overlap(attempts: list[dict[str, Any]], host: str) -> int:
    """The most attempts that ran on ``host`` at one moment (their recorded times)."""
    edges = []
    for a in attempts:
        if a["host"] == host and a["end"] is not None:
            edges += [(a["start"], 1), (a["end"], -1)]
    most = running = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start
        running += step
        most = max(most, running)
    return most


def test_blacklisting_a_dask_node_keeps_new_tasks_off_it(on_dask: Any) -> None:
    disco = on_dask.disco
    disco.blacklist("127.0.0.3")
    assert disco.nodeinfo()["127.0.0.3"]["blacklisted"] is True
    assert get_json(on_dask.url + "/disco/ctrl/get_blacklist") == ["127.0.0.3"]
    job = word_count(on_dask, "DaskBlack", 8, delay=0.2)
    assert counts(job) == jobs.expected_counts(8)
    assert {h for _, h in assignments(on_dask, job.name)} == {"127.0.0.2"}

    disco.whitelist("127.0.0.3")
    assert disco.nodeinfo()["127.0.0.3"]["blacklisted"] is False
    # 127.0.0.2's 4 slots cannot hold 12 tasks of 1 s: 127.0.0.3 gets some again
    job = word_count(on_dask, "DaskWhite", 12, delay=1.0)
    assert counts(job) == jobs.expected_counts(12)
    assert {h for _, h in assignments(on_dask, job.name)} == {"127.0.0.2", "127.0.0.3"}


def test_a_config_table_row_overrides_the_max_workers_of_a_dask_host(on_dask: Any) -> None:
    disco = on_dask.disco
    assert disco.nodeinfo()["127.0.0.3"]["max_workers"] == 2  # its Dask threads
    disco.set_config([["127.0.0.3", "1"], ["127.0.0.9", "5"]])
    info = disco.nodeinfo()
    assert info["127.0.0.3"]["max_workers"] == 1  # the row
    assert info["127.0.0.2"]["max_workers"] == 4  # no row: its Dask threads
    assert "127.0.0.9" not in info  # a row does not make a node: no Dask worker there
    assert disco.get_config() == [["127.0.0.3", "1"], ["127.0.0.9", "5"]]

    job = word_count(on_dask, "DaskOneSlot", 12, delay=1.0)
    assert counts(job) == jobs.expected_counts(12)
    attempts = get_json(on_dask.url + "/disco/ctrl/task_attempts?name=" + job.name)["attempts"]
    assert any(a["host"] == "127.0.0.3" for a in attempts)  # it still runs tasks...
    assert max_overlap(attempts, "127.0.0.3") == 1  # ...one at a time
    assert max_overlap(attempts, "127.0.0.2") > 1

    disco.set_config([])  # no row: back to the Dask threads
    assert disco.nodeinfo()["127.0.0.3"]["max_workers"] == 2


def test_the_web_pages_data_lists_the_dask_hosts(on_dask: Any) -> None:
    # the nodes page, and the JSON its script reads (disco/web/static/js/nodes.js)
    with urllib.request.urlopen(on_dask.url + "/nodes.html", timeout=30) as reply:
        assert reply.status == 200
        assert b"nodes.js" in reply.read()
    nodes = get_json(on_dask.url + "/disco/ctrl/nodeinfo")
    assert {"127.0.0.2", "127.0.0.3"} <= set(nodes)
    assert all(nodes[h]["connected"] for h in ("127.0.0.2", "127.0.0.3"))
    assert nodes["127.0.0.2"]["max_workers"] == 4 and nodes["127.0.0.3"]["max_workers"] == 2
    on_dask.disco.blacklist("127.0.0.3")
    assert get_json(on_dask.url + "/disco/ctrl/get_blacklist") == ["127.0.0.3"]
    assert get_json(on_dask.url + "/disco/ctrl/nodeinfo")["127.0.0.3"]["blacklisted"]
    on_dask.disco.whitelist("127.0.0.3")


def test_a_blacklisted_dask_host_that_leaves_and_comes_back_is_still_blacklisted(
    tmp_path: Path,
) -> None:
    cluster = start_dask_cluster(tmp_path / "dask", ["127.0.0.2", "127.0.0.3"])
    try:
        master = dask_master(tmp_path / "disco", cluster)
        try:
            master.disco.blacklist("127.0.0.3")
            for worker in cluster.workers_on("127.0.0.3"):
                worker.kill()
            poll_for(
                lambda: not master.disco.nodeinfo().get("127.0.0.3", {}).get("connected"),
                30.0,
                "127.0.0.3 to leave",
            )
            cluster.add_worker("127.0.0.3")
            poll_for(
                lambda: master.disco.nodeinfo().get("127.0.0.3", {}).get("connected"),
                60.0,
                "127.0.0.3 to come back",
            )
            assert master.disco.nodeinfo()["127.0.0.3"]["blacklisted"] is True
            job = word_count(master, "DaskBackBlack", 6, delay=0.2)
            assert counts(job) == jobs.expected_counts(6)
            assert {h for _, h in assignments(master, job.name)} == {"127.0.0.2"}
        finally:
            master.stop()
    finally:
        cluster.stop()
