"""DDFS on the nodes of a Dask cluster (issue 9, parts D and F together): blobs pushed
to the Dask nodes through their upload servers, a job over a ``tag://`` input runs its
map tasks on the nodes that hold the blobs, ``DDFS_BLOB_REPLICAS`` copies on distinct
nodes, and GC re-replicates when a node goes away and keeps its data when it comes back."""

from __future__ import annotations

import json
import re
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from disco.core import result_iterator
from disco.ddfs.client import DDFS
from disco.job import Job
from tests.backends import dask_jobs as jobs
from tests.conftest import child_pids, dask_master, poll_for, start_dask_cluster
from tests.ddfs.conftest import files_below

pytestmark = [pytest.mark.dask, pytest.mark.timeout(300)]


def test_tag_inputs_run_where_their_blobs_are(on_dask: Any) -> None:
    ddfs = DDFS(on_dask.url)
    texts = {"t%d" % i: ("%s\n" % " ".join(jobs.WORDS[i:])).encode() for i in range(4)}
    # one replica each, forced on alternating nodes: the map task must go there
    for i, (name, data) in enumerate(sorted(texts.items())):
        host = ("127.0.0.2", "127.0.0.3")[i % 2]
        ddfs.push("data:dask", [(data, name)], replicas=1, forceon=[host])
    blobs = [b for urls in ddfs.blobs("data:dask") for b in urls]
    assert {re.match(r"\w+://([^/:]+)", u).group(1) for u in blobs} == {
        "127.0.0.2",
        "127.0.0.3",
    }
    job = Job(name="DaskTag", master=on_dask.url).run(
        input=["tag://data:dask"],
        map=jobs.slow_word_map,
        reduce=jobs.sum_reduce,
        params={"delay": 0},
    )
    got = {
        (k.decode() if isinstance(k, bytes) else str(k)): int(v)
        for k, v in result_iterator(job.wait(poll_interval=0.1))
    }
    want = Counter(w for data in texts.values() for w in data.decode().split())
    assert got == dict(want)
    # each map task ran on the node holding its blob (its only replica)
    placed = {}
    for _, (_, _, message) in on_dask.disco.events(job.name):
        match = re.fullmatch(r"map:(\d+) assigned to (\S+)", message)
        if match:
            placed[int(match.group(1))] = match.group(2)
    hosts = [re.match(r"\w+://([^/:]+)", u).group(1) for u in blobs]
    assert sorted(placed) == list(range(len(blobs)))
    assert [placed[i] for i in range(len(blobs))] == hosts
    assert set(placed.values()) == {"127.0.0.2", "127.0.0.3"}


REPLICATED = {
    "DDFS_BLOB_REPLICAS": "2",
    "DDFS_TAG_REPLICAS": "2",
    "DDFS_GC_INITIAL_WAIT": "0",  # gc_start is accepted at once (then once a day)
    "DDFS_GC_DELETE_PAUSE": "0",
}


def host_of(url: str) -> str:
    return re.match(r"\w+://([^/:]+)", url).group(1)


def node_ddfs(cluster: Any, host: str) -> str:
    """The DDFS_DATA of the node ``host`` (its DISCO_ROOT is its own, dask_cluster.py)."""
    return str(cluster.root / "nodes" / host / "ddfs")


def blob_files(cluster: Any, host: str, blob: str) -> list[str]:
    return [f for f in files_below(node_ddfs(cluster, host), "blob") if f.startswith(blob)]


def replicas(ddfs: DDFS, tag: str) -> list[str]:
    (urls,) = list(ddfs.blobs(tag))
    return list(urls)


def read_blob(master: Any, url: str) -> bytes:
    """The blob at ``disco://host/path`` from that node's data server (on DISCO_PORT)."""
    match = re.fullmatch(r"disco://([^/]+)/(.*)", url)
    http = "http://%s:%d/%s" % (match.group(1), master.port, match.group(2))
    with urllib.request.urlopen(http, timeout=30) as reply:
        return reply.read()


def run_gc(master: Any) -> None:
    def get(path: str) -> Any:
        with urllib.request.urlopen(master.url + path, timeout=30) as reply:
            return json.loads(reply.read())

    assert get("/ddfs/ctrl/gc_start") == "GC has started"
    poll_for(lambda: get("/ddfs/ctrl/gc_status") == "", 120.0, "GC to finish")


def test_blob_replicas_are_on_distinct_dask_nodes(dask_cluster: Any, tmp_path: Path) -> None:
    before = child_pids()
    master = dask_master(tmp_path / "disco", dask_cluster, settings=REPLICATED)
    try:
        ddfs = DDFS(master.url)
        ddfs.push("data:twice", [(b"one blob, two copies\n", "twice")], replicas=2)
        urls = replicas(ddfs, "data:twice")
        assert sorted(host_of(u) for u in urls) == ["127.0.0.2", "127.0.0.3"]
        blob = DDFS.blob_name(urls[0])
        for host in ("127.0.0.2", "127.0.0.3"):  # a file under each node's own DDFS_DATA
            assert len(blob_files(dask_cluster, host, blob)) == 1, host
        for url in urls:
            assert read_blob(master, url) == b"one blob, two copies\n"
    finally:
        master.stop()
    poll_for(lambda: not (child_pids() - before), 10.0, "worker processes to exit")


def test_gc_re_replicates_when_a_dask_node_goes_and_keeps_its_data_when_it_comes_back(
    tmp_path: Path,
) -> None:
    hosts = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    cluster = start_dask_cluster(tmp_path / "dask", hosts)
    try:
        master = dask_master(tmp_path / "disco", cluster, settings=REPLICATED)
        try:
            ddfs = DDFS(master.url)
            data = b"a blob that must survive\n"
            ddfs.push("data:survive", [(data, "survive")], replicas=2)
            urls = replicas(ddfs, "data:survive")
            holders = sorted(host_of(u) for u in urls)
            assert len(set(holders)) == 2
            blob = DDFS.blob_name(urls[0])
            victim = holders[0]
            live = [h for h in hosts if h != victim]

            # every process of a host holding a replica dies: the node leaves
            for worker in cluster.workers_on(victim):
                worker.kill()
            poll_for(
                lambda: not master.disco.nodeinfo().get(victim, {}).get("connected"),
                30.0,
                "%s to leave the node set" % victim,
            )
            run_gc(master)
            # re-replication: 2 replicas on live nodes again (files on their volumes)
            on_live = sorted(h for h in map(host_of, replicas(ddfs, "data:survive")) if h in live)
            assert len(on_live) == 2, replicas(ddfs, "data:survive")
            for host in live:
                assert len(blob_files(cluster, host, blob)) == 1, host
            for url in replicas(ddfs, "data:survive"):
                if host_of(url) in live:
                    assert read_blob(master, url) == data

            # the host comes back: it rejoins with its data directory as it left it
            cluster.add_worker(victim)
            poll_for(
                lambda: master.disco.nodeinfo().get(victim, {}).get("connected"),
                60.0,
                "%s to rejoin" % victim,
            )
            run_gc(master)
            assert ddfs.exists("data:survive") and "data:survive" in ddfs.list("data:")
            assert len(blob_files(cluster, victim, blob)) == 1  # GC kept its copy...
            final = replicas(ddfs, "data:survive")
            assert {host_of(u) for u in final} == set(hosts), final  # ...and refers to it
            for url in final:
                assert read_blob(master, url) == data  # every replica readable, victim's too
        finally:
            master.stop()
    finally:
        cluster.stop()
