"""The DDFS master with its nodes reached over HTTP (``HttpNodeStore``, issue 9 part D).

Three simulated nodes (localhost = 127.0.0.1, 127.0.0.2, 127.0.0.3) whose storage the
DDFS master reaches only through the ``/ddfs/node/...`` routes of their upload servers
(``DDFS_NODES_OVER_HTTP``), as it reaches nodes on other machines: pushes with three
replicas, tag reads, GC and re-replication when a node goes away (its servers stop, or it
leaves the node set) and when it comes back, and a node that hangs.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from disco.ddfs.names import parse_ddfs_url
from disco.ddfs.nodehttp import HttpNodeStore
from disco.ddfs.nodestore import LocalNodeStore
from tests.conftest import poll_for
from tests.ddfs.conftest import GC_NOW, HTTP, NODES3, files_below, run_gc, three_nodes

HOSTS = [h for h, _ in NODES3]


def hosts_of(urls: list[str]) -> set[str]:
    return {parse_ddfs_url(u).host for u in urls}


def on_loop(http: HTTP, coro):  # type: ignore[no-untyped-def]
    return asyncio.run_coroutine_threadsafe(coro, http.master._loop).result(30)


def stop_node(http: HTTP, host: str) -> None:
    """The node's machine goes away: its upload (and node-route) and data servers stop."""
    backend = http.master.server.backend
    assert on_loop(http, backend.stop_put_server(host))
    assert on_loop(http, backend.stop_data_server(host))


def start_node(http: HTTP, host: str) -> None:
    backend = http.master.server.backend
    on_loop(http, backend.start_data_server(host))
    on_loop(http, backend.start_put_server(host))


def tag_files(http: HTTP, host: str, name: str) -> list[str]:
    root = http.master.server.backend.ddfs_root(host)
    return [f for f in files_below(root, "tag") if f.startswith(name + "$")]


def readable(http: HTTP, url: str) -> bool:
    try:
        return http.request(url).status == 200
    except OSError:  # nobody listens there any more
        return False


def readable_replicas(http: HTTP, entry: list[str]) -> set[str]:
    return {parse_ddfs_url(u).host for u in entry if readable(http, u)}


def test_master_reaches_every_node_over_http(tmp_path) -> None:
    with three_nodes(tmp_path, "http") as m:
        backend = m.server.backend
        stores = {h: backend.ddfs_node(h) for h in HOSTS}
        assert all(isinstance(s, HttpNodeStore) for s in stores.values())
        assert stores["127.0.0.2"].base_url.startswith("http://127.0.0.2:")
        assert stores["127.0.0.3"].base_url.startswith("http://127.0.0.3:")
    with three_nodes(tmp_path / "local") as m:
        assert isinstance(m.server.backend.ddfs_node("127.0.0.2"), LocalNodeStore)


def test_push_three_replicas_tag_and_read_over_http(tmp_path) -> None:
    with three_nodes(tmp_path, "http", DDFS_TAG_REPLICAS="3") as m:
        http = HTTP(m)
        replicas = http.push("three", b"on every node", replicas=3)
        assert hosts_of(replicas) == {"localhost", "127.0.0.2", "127.0.0.3"}
        locations = http.tag("t:three", [replicas])
        assert hosts_of(locations) == set(HOSTS)  # a tag version on each node
        doc = http.get("t:three")
        assert doc["urls"] == [replicas]
        for host in HOSTS:
            assert tag_files(http, host, "t:three") == [doc["id"]]
        for url in replicas + locations:
            assert http.request(url).status == 200
        assert http.ok("/ddfs/tags") == ["t:three"]
        versions = http.ok("/ddfs/ctrl/tag_versions?tag=t:three")
        assert len(versions) == 1 and hosts_of(versions[0]["replicas"]) == set(HOSTS)


@pytest.mark.parametrize("access", ["local", "http"])
def test_node_leaving_and_rejoining_the_node_set(tmp_path, access: str) -> None:
    """A node that leaves the node set (config table; a Dask worker host that went away)
    loses nothing: GC copies its blobs and tag versions elsewhere; when it rejoins, its
    stale tag versions are collected and its blob copies count again."""
    with three_nodes(tmp_path, access, **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        for i in range(6):
            http.tag("t:leave", [http.push("l%d" % i, b"leave %d" % i)])
        before = http.get("t:leave")
        victim = "127.0.0.2"
        others = [h for h in HOSTS if h != victim]
        http.ok("/disco/ctrl/save_config_table", "POST", [[h, "1"] for h in others])
        assert http.get("t:leave")["urls"] == before["urls"]
        run_gc(http)
        after = http.get("t:leave")
        for entry in after["urls"]:
            assert readable_replicas(http, entry) >= set(others)  # Kb = 2 without the victim
        for host in others:  # the tag has a current version on both remaining nodes
            assert after["id"] in tag_files(http, host, "t:leave")
        http.ok("/disco/ctrl/save_config_table", "POST", [[h, "1"] for h in HOSTS])
        http.tag("t:leave", [http.push("l6", b"leave 6")])  # a write while it is back
        newest = http.get("t:leave")
        assert len(newest["urls"]) == 7
        run_gc(http)
        assert http.get("t:leave") == newest  # the rejoined node's old versions lose
        stale = [f for f in tag_files(http, victim, "t:leave") if f != newest["id"]]
        assert stale == []  # superseded versions on the rejoined node are collected
        for i, entry in enumerate(reversed(newest["urls"])):
            for url in entry:
                assert http.request(url).body == b"leave %d" % i


def test_node_going_away_and_coming_back_over_http(tmp_path) -> None:
    """A node whose servers stop (its machine died) while it is still configured: tag
    reads and writes go on (fewer failed nodes than DDFS_TAG_MIN_REPLICAS), GC
    re-replicates its blobs through the other nodes' routes; once it is back, GC
    collects what it holds that is stale and every listed replica is readable."""
    settings = {"DDFS_TAG_MIN_REPLICAS": "2", **GC_NOW}
    with three_nodes(tmp_path, "http", **settings) as m:
        http = HTTP(m)
        run_gc(http)
        for i in range(6):
            http.tag("t:away", [http.push("a%d" % i, b"away %d" % i)])
        victim = "127.0.0.3"
        stop_node(http, victim)
        others = {h for h in HOSTS if h != victim}
        assert len(http.get("t:away")["urls"]) == 6
        locations = http.tag("t:away2", [["x"]])  # new versions go to the nodes still up
        assert victim not in hosts_of(locations)
        run_gc(http)  # re-replication through the HTTP routes of the remaining nodes
        stats = http.ok("/ddfs/ctrl/gc_stats")
        assert set(stats) == {"timestamp", "stats"}
        doc = http.get("t:away")
        for entry in doc["urls"]:
            assert readable_replicas(http, entry) == others
        start_node(http, victim)
        run_gc(http)
        back = http.get("t:away")
        assert len(back["urls"]) == 6
        for i, entry in enumerate(reversed(back["urls"])):
            assert len(readable_replicas(http, entry)) >= 2
            for url in entry:
                assert http.request(url).body == b"away %d" % i
        assert [f for f in tag_files(http, victim, "t:away") if f != back["id"]] == []


@pytest.mark.server_errors_expected  # too_many_failed_nodes is a 500, as in 0.5
def test_a_node_not_answering_counts_as_down(tmp_path) -> None:
    with three_nodes(tmp_path, "http") as m:
        http = HTTP(m)
        http.tag("t:down", [])
        stop_node(http, "127.0.0.2")
        http.master._loop.call_soon_threadsafe(m.server.ddfs.tags.forget_cache)  # not cached
        answer = http.request("/ddfs/tag/t:down")
        assert (answer.status, answer.text) == (500, "Internal server error: too_many_failed_nodes")
        start_node(http, "127.0.0.2")
        assert http.get("t:down")["urls"] == []


def silent_server() -> tuple[socket.socket, list[socket.socket]]:
    """A listening socket that accepts connections and never answers (a hung node)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return sock, held


def test_gc_without_progress_over_http_is_aborted(tmp_path, caplog) -> None:
    """A node that accepts the master's requests and never answers stops the GC run
    (DDFS_GC_PROGRESS_TIMEOUT) instead of hanging it."""
    settings = {"DDFS_GC_PROGRESS_TIMEOUT": "0.5", "DDFS_TAG_MIN_REPLICAS": "2", **GC_NOW}
    with three_nodes(tmp_path, "http", **settings) as m:
        http = HTTP(m)
        run_gc(http)
        http.tag("t:hung", [http.push("h", b"hung")])
        backend = m.server.backend
        sock, held = silent_server()
        real = backend._stores["127.0.0.3"]
        port = sock.getsockname()[1]
        backend._stores["127.0.0.3"] = HttpNodeStore("127.0.0.3", "http://127.0.0.1:%d" % port)
        try:
            caplog.set_level("WARNING", logger="disco.ddfs.gc")
            assert http.ok("/ddfs/ctrl/gc_start") == "GC has started"
            poll_for(lambda: "DDFS GC aborted: no progress" in caplog.text, 30, "GC to abort")
            poll_for(lambda: http.ok("/ddfs/ctrl/gc_status") == "", 30, "GC to stop")
        finally:
            hung = backend._stores["127.0.0.3"]
            backend._stores["127.0.0.3"] = real
            on_loop(http, hung.close())
            sock.close()
            for conn in held:
                conn.close()
        run_gc(http)  # the node answers again: a normal run
        assert len(http.get("t:hung")["urls"]) == 1


def test_jobs_on_ddfs_with_nodes_over_http(tmp_path) -> None:
    """Real jobs on three nodes reached over HTTP: a word count over a ``tag://`` input
    whose blobs have three replicas, OOB values put and read across nodes, and results
    saved in a DDFS tag (written by the master through the node routes)."""
    from collections import Counter

    from disco.core import Job, result_iterator
    from disco.ddfs import DDFS
    from disco.embedded import EmbeddedMaster
    from disco.worker.task_io import chain_reader
    from tests.conftest import _assert_no_leaked_workers, child_pids
    from tests.e2e.test_ddfs_jobs import oob_map, oob_reduce, sum_reduce, wait, word_map

    nodes = [(h, 2) for h in HOSTS]
    settings = {"DDFS_NODES_OVER_HTTP": "1", "DDFS_DELAYED_FLUSH": "0.05"}
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "c", nodes=nodes, settings=settings, retry_delay=0.0) as m:
        ddfs = DDFS(m.url)
        texts = {"one": b"a b\nc a\n", "two": b"b b\n", "three": b"c d\n"}
        ddfs.push("data:words", [(data, name) for name, data in texts.items()], replicas=3)
        assert all(len(entry) == 3 for entry in ddfs.urls("data:words"))
        job = Job(master=m.url).run(
            input=["tag://data:words"], map=word_map, reduce=sum_reduce, save_results=True
        )
        results = wait(job)
        assert results == ["tag://disco:results:%s" % job.name]
        want = Counter(b"a b c a b b c d".split())
        assert dict(result_iterator(results, reader=chain_reader)) == dict(want)
        letters = "abcdef"
        job = Job(master=m.url).run(
            input=["raw://%s" % c for c in letters], map=oob_map, reduce=oob_reduce
        )
        got = dict(result_iterator(wait(job)))
        assert got == {**{c: c.upper().encode() for c in letters}, "missing": None}
    _assert_no_leaked_workers(before)
