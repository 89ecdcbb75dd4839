"""Blob and tag replicas on distinct local nodes; losing a node's data (ddfs.md 1.3, 1.7, 5.5)."""

from __future__ import annotations

import asyncio
import shutil
import urllib.parse

import pytest

from disco.ddfs.names import parse_ddfs_url
from tests.ddfs.conftest import GC_NOW, HTTP, NODES3, files_below, run_gc, three_nodes


def hosts_of(urls: list[str]) -> set[str]:
    return {parse_ddfs_url(u).host for u in urls}


def forget_cache(http: HTTP) -> None:
    """Make the master read tags from the nodes again (as after a restart)."""
    http.master._loop.call_soon_threadsafe(http.master.server.ddfs.tags.forget_cache)


def tag_files(http: HTTP, host: str, name: str) -> list[str]:
    root = http.master.server.backend.ddfs_root(host)
    return [f for f in files_below(root, "tag") if f.startswith(name + "$")]


def test_blobs_and_tag_versions_on_distinct_nodes(ddfs3: HTTP) -> None:
    replicas = ddfs3.push("rep", b"replicated")
    assert len(replicas) == 2 and len(hosts_of(replicas)) == 2
    locations = ddfs3.tag("t:rep", [replicas])
    assert len(locations) == 2 and len(hosts_of(locations)) == 2
    doc_id = ddfs3.get("t:rep")["id"]
    for host in hosts_of(locations):
        assert tag_files(ddfs3, host, "t:rep") == [doc_id]
    for url in replicas + locations:
        assert ddfs3.request(url).status == 200


def test_losing_a_nodes_data_loses_no_replicated_blob_or_tag(tmp_path, node_access: str) -> None:
    with three_nodes(tmp_path, node_access, **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        for i in range(6):
            http.tag("t:lose", [http.push("b%d" % i, b"data %d" % i)])
        victim = "127.0.0.2"
        shutil.rmtree(m.server.backend.ddfs_root(victim))
        forget_cache(http)
        urls = http.get("t:lose")["urls"]
        assert len(urls) == 6
        for entry in urls:  # every blob still has a readable replica
            bodies = [http.request(u) for u in entry]
            assert any(b.status == 200 for b in bodies)
        run_gc(http)  # re-replicates blobs and the tag
        urls = http.get("t:lose")["urls"]
        for entry in urls:
            assert len(entry) == 2 and len(hosts_of(entry)) == 2
            i = int(parse_ddfs_url(entry[0]).oid.split("$")[0][1:])
            for url in entry:
                assert http.request(url).body == b"data %d" % i
        locations = http.tag("t:lose", [])  # current version locations
        files = {h: tag_files(http, h, "t:lose") for h, _ in NODES3}
        assert len(hosts_of(locations)) == 2, (locations, files)
        stats = http.ok("/ddfs/ctrl/gc_stats")
        assert set(stats) == {"timestamp", "stats"}


def test_removed_node_tags_still_readable(ddfs3: HTTP) -> None:
    replicas = ddfs3.push("x", b"x")
    ddfs3.tag("t:node", [replicas])
    ddfs3.ok("/disco/ctrl/save_config_table", "POST", [["localhost", "1"], ["127.0.0.3", "1"]])
    assert ddfs3.get("t:node")["urls"] == [replicas]
    assert ddfs3.ok("/ddfs/tags") == ["t:node"]
    targets = ddfs3.ok("/ddfs/new_blob/y?replicas=2")
    assert {urllib.parse.urlsplit(t).hostname for t in targets} == {"localhost", "127.0.0.3"}


@pytest.mark.server_errors_expected  # an unreachable node: 500 as in 0.5 (ddfs.md 2.3)
def test_too_many_failed_nodes(ddfs3: HTTP) -> None:
    ddfs3.tag("t:fail", [])
    backend = ddfs3.master.server.backend
    node = backend._ddfs.pop("127.0.0.3")  # the node stops answering
    try:
        answer = ddfs3.request("/ddfs/tag/t:fail")
        assert (answer.status, answer.text) == (500, "Internal server error: too_many_failed_nodes")
        assert ddfs3.request("/ddfs/tags").status == 500
    finally:
        backend._ddfs["127.0.0.3"] = node
    assert ddfs3.get("t:fail")["urls"] == []


def test_tag_write_survives_a_failing_node(ddfs3: HTTP) -> None:
    node = ddfs3.master.server.backend.local_ddfs_node("127.0.0.2")
    node.reserve_kb = 1 << 60  # this node's disk is full
    try:
        for i in range(5):
            locations = ddfs3.tag("t:full%d" % i, [["x"]])
            assert len(locations) == 2 and "127.0.0.2" not in hosts_of(locations)
    finally:
        node.reserve_kb = 0


def test_concurrent_tag_updates_on_three_nodes(ddfs3: HTTP) -> None:
    tags = ddfs3.master.server.ddfs.tags

    async def many() -> None:
        await asyncio.gather(
            *[tags.append("t:conc", [["u%d" % i]], None, update=bool(i % 2)) for i in range(30)]
        )

    asyncio.run_coroutine_threadsafe(many(), ddfs3.master._loop).result(30)
    assert sorted(u[0] for u in ddfs3.get("t:conc")["urls"]) == sorted("u%d" % i for i in range(30))
    forget_cache(ddfs3)
    assert len(ddfs3.get("t:conc")["urls"]) == 30


def test_restart_finds_tags_on_every_node(tmp_path, node_access: str) -> None:
    with three_nodes(tmp_path, node_access) as m:
        http = HTTP(m)
        replicas = http.push("r", b"restart")
        for i in range(5):
            http.tag("t:restart:%d" % i, [replicas], token="tok" if i == 0 else None)
        http.ok("/ddfs/tag/t:restart:4", "DELETE")
        docs = {i: http.get("t:restart:%d" % i, token="tok") for i in range(4)}
    with three_nodes(tmp_path, node_access) as m:
        http = HTTP(m)
        assert http.ok("/ddfs/tags/t:restart") == ["t:restart:%d" % i for i in range(4)]
        for i, doc in docs.items():
            assert http.get("t:restart:%d" % i, token="tok") == doc
        assert http.request("/ddfs/tag/t:restart:0").status == 401
        assert http.request("/ddfs/tag/t:restart:4").status == 404
        assert http.request(replicas[0]).body == b"restart"
