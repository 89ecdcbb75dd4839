"""Garbage collection and re-replication (ddfs.md 5, 8.2) with expiries of seconds."""

from __future__ import annotations

import os
import time

from disco.ddfs.names import parse_ddfs_url
from disco.embedded import EmbeddedMaster
from tests.conftest import poll_for
from tests.ddfs.conftest import GC_NOW, HTTP, access_settings, files_below, run_gc, three_nodes


def root_of(http: HTTP, host: str = "localhost") -> str:
    return http.master.server.backend.ddfs_root(host)


def single_copy(http: HTTP, prefix: str, data: bytes) -> tuple[list[str], str]:
    """Push a blob with one replica; its replica list and the file on its node."""
    replicas = http.push(prefix, data, replicas=1)
    where = parse_ddfs_url(replicas[0])
    node = http.master.server.backend.local_ddfs_node(where.host)
    return replicas, node.path(where.volume, "blob", where.oid)


def remove_file(path: str) -> None:
    os.chmod(path, 0o600)
    os.unlink(path)


def one_node(tmp_path, access: str = "local", **settings: str) -> EmbeddedMaster:
    settings = {**GC_NOW, **access_settings(access), **settings}
    return EmbeddedMaster(root=tmp_path / "disco", settings=settings)


def test_gc_status_waits_then_idles(tmp_path, ddfs: HTTP) -> None:
    assert ddfs.ok("/ddfs/ctrl/gc_status") == (
        "GC is waiting for the cluster to stabilize after startup."
    )
    assert ddfs.ok("/ddfs/ctrl/gc_start") == "GC is waiting"
    assert ddfs.ok("/ddfs/ctrl/gc_stats") == ""
    assert ddfs.ok("/ddfs/ctrl/safe_gc_blacklist") == []
    with one_node(tmp_path / "other") as m:
        http = HTTP(m)
        run_gc(http)
        assert http.ok("/ddfs/ctrl/gc_status") == ""
        stats = http.ok("/ddfs/ctrl/gc_stats")
        assert sorted(stats["stats"]) == [
            "Blobs deleted",
            "Blobs kept",
            "Tags deleted",
            "Tags kept",
        ]
        assert len(stats["timestamp"]) == 19


def test_gc_reports_phases_while_running(tmp_path, node_access: str) -> None:
    with one_node(tmp_path, node_access) as m:
        http = HTTP(m)
        run_gc(http)
        seen = set()
        assert http.ok("/ddfs/ctrl/gc_start") == "GC has started"
        while (status := http.ok("/ddfs/ctrl/gc_status")) != "":
            seen.add(status)
        assert seen <= {
            "GC is initializing (phase start).",
            "GC is scanning DDFS (phase build_map).",
            "GC is scanning DDFS (phase map_wait).",
            "GC is performing garbage collection (phase gc).",
            "GC is re-replicating blobs (phase rr_blobs).",
            "GC is re-replicating blobs (phase rr_blobs_wait).",
            "GC is re-replicating tags (phase rr_tags).",
        }


def test_superseded_versions_go_fresh_data_stays(tmp_path, node_access: str) -> None:
    with one_node(tmp_path, node_access) as m:
        http = HTTP(m)
        run_gc(http)
        tagged = http.push("tagged", b"keep me")
        untagged = http.push("untagged", b"young orphan")
        for i in range(3):
            http.tag("t:gc", [["x%d" % i]])
        http.tag("t:gc", [tagged])
        current = http.get("t:gc")["id"]
        assert len(files_below(root_of(http), "tag")) == 4
        run_gc(http)
        assert files_below(root_of(http), "tag") == [current]
        blobs = files_below(root_of(http), "blob")
        assert sorted(blobs) == sorted(u[0].rsplit("/", 1)[1] for u in (tagged, untagged))
        assert http.request(tagged[0]).body == b"keep me"
        stats = http.ok("/ddfs/ctrl/gc_stats")["stats"]
        assert stats["Tags deleted"][0] == 3 and stats["Tags kept"][0] == 1
        assert stats["Blobs kept"][0] == 2 and stats["Blobs deleted"] == [0, 0]


def test_orphans_deleted_after_expiry(tmp_path, node_access: str) -> None:
    settings = {"DDFS_ORPHAN_BLOB_EXPIRES": "1", "DDFS_ORPHAN_TAG_EXPIRES": "1"}
    with one_node(tmp_path, node_access, **settings) as m:
        http = HTTP(m)
        run_gc(http)
        orphan = http.push("orphan", b"nobody")
        doomed = http.push("doomed", b"deleted tag")
        kept = http.push("kept", b"live")
        http.tag("t:doomed", [doomed])
        http.tag("t:live", [kept])
        http.ok("/ddfs/tag/t:doomed", "DELETE")
        run_gc(http)  # everything is younger than a second: kept
        assert len(files_below(root_of(http), "blob")) == 3

        def expired_gone() -> bool:
            run_gc(http)
            blobs = files_below(root_of(http), "blob")
            tags = files_below(root_of(http), "tag")
            return blobs == [kept[0].rsplit("/", 1)[1]] and not any(
                t.startswith("t:doomed$") for t in tags
            )

        # past the 1 s expiries, a GC pass removes the orphans and the deleted tag
        poll_for(expired_gone, 60, "GC to remove the expired blobs and tag")
        assert http.request(orphan[0]).status == 404
        assert http.request(kept[0]).body == b"live"
        assert http.get("t:live")["urls"] == [kept]


def test_deleted_tag_quarantine_is_pruned(tmp_path, node_access: str) -> None:
    settings = {"DDFS_DELETED_TAG_EXPIRES": "0.5", "DDFS_ORPHAN_TAG_EXPIRES": "0.3"}
    with one_node(tmp_path, node_access, **settings) as m:
        http = HTTP(m)
        run_gc(http)
        http.tag("t:q", [])
        http.ok("/ddfs/tag/t:q", "DELETE")
        tags = m.server.ddfs.tags

        def deleted() -> set[str]:
            import asyncio

            return asyncio.run_coroutine_threadsafe(tags.deleted_names(), m._loop).result()

        run_gc(http)  # first seen
        assert deleted() == {"t:q"}
        poll_for(  # past the 0.5 s quarantine, a GC pass prunes it
            lambda: run_gc(http) or deleted() == set(), 60, "the quarantine to be pruned"
        )
        # its version files went first (orphan expiry < quarantine): no resurrection
        assert http.request("/ddfs/tag/t:q").status == 404
        assert http.ok("/ddfs/tags") == []


def test_stale_partial_uploads_removed(tmp_path, node_access: str) -> None:
    with one_node(tmp_path, node_access, DDFS_PARTIAL_EXPIRES="1") as m:
        http = HTTP(m)
        run_gc(http)
        node = m.server.backend.local_ddfs_node("localhost")
        upload = node.begin_blob("stale$%s" % "6a4-1-2")  # an upload from 2023
        upload.write(b"half")
        upload.file.close()
        fresh = node.begin_blob("fresh$%s" % _now_ts())
        fresh.file.close()
        run_gc(http)
        assert not os.path.exists(upload.staging)
        assert os.path.exists(fresh.staging)


def _now_ts() -> str:
    from disco.ddfs.names import Timestamp

    return str(Timestamp.from_time(time.time()))


def test_lost_replica_is_recovered_into_the_tag(tmp_path, node_access: str) -> None:
    with three_nodes(tmp_path, node_access, **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        replicas, path = single_copy(http, "lost", b"payload")
        http.tag("t:lost", [replicas])
        holder = parse_ddfs_url(replicas[0])
        other = next(h for h in ("localhost", "127.0.0.2", "127.0.0.3") if h != holder.host)
        node = m.server.backend.local_ddfs_node(other)  # a copy the tag never heard of
        node.store_blob(holder.oid, path)
        run_gc(http)
        entry = http.get("t:lost")["urls"][0]
        assert {parse_ddfs_url(u).host for u in entry} == {holder.host, other}
        assert entry == sorted(entry)  # [quirk] GC sorts replica sets


def test_gc_blacklisted_node_is_drained(tmp_path, node_access: str) -> None:
    with three_nodes(tmp_path, node_access, **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        pushed = [http.push("d%d" % i, b"drain %d" % i) for i in range(6)]
        for replicas in pushed:
            http.tag("t:drain", [replicas])
        http.tag("t:other", [["tag://t:drain"]])
        victim = "127.0.0.2"
        assert "t:drain" in http.ok("/ddfs/ctrl/hosted_tags", "POST", victim)
        http.ok("/disco/ctrl/gc_blacklist", "POST", victim)
        assert http.ok("/disco/ctrl/get_gc_blacklist") == [victim]
        run_gc(http)
        for entry in http.get("t:drain")["urls"]:
            hosts = {parse_ddfs_url(u).host for u in entry}
            assert victim not in hosts and len(hosts) == 2
        assert http.ok("/ddfs/ctrl/safe_gc_blacklist") == [victim]
        assert http.ok("/ddfs/ctrl/hosted_tags", "POST", victim) == []
        answer = http.request("/ddfs/ctrl/hosted_tags", "POST", "nosuchhost")
        assert (answer.status, answer.text) == (404, "Unknown host.")


def test_hosted_tags_follows_tag_links(ddfs3: HTTP) -> None:
    replicas = ddfs3.push("h", b"h", replicas=1)
    host = parse_ddfs_url(replicas[0]).host
    ddfs3.tag("t:direct", [replicas])
    ddfs3.tag("t:meta", [["tag://t:direct"]])
    ddfs3.tag("t:meta2", [["tag://t:meta"], ["tag://t:meta2"]])
    hosted = ddfs3.ok("/ddfs/ctrl/hosted_tags", "POST", host)
    assert {"t:direct", "t:meta", "t:meta2"} <= set(hosted)


def test_gc_keeps_every_fresh_tag_and_blob(tmp_path, node_access: str) -> None:
    """5.7: many freshly pushed and tagged blobs survive a GC run."""
    with three_nodes(tmp_path, node_access, **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        for i in range(30):
            replicas = http.push("f%d" % i, b"fresh %d" % i)
            query = "?delayed=1" if i % 3 == 0 else ("?update=1" if i % 3 == 1 else "")
            http.tag("t:fresh:%d" % i, [replicas], query)
            if i % 5 == 0:
                http.tag("t:fresh:%dtag" % i, [replicas])
        run_gc(http)
        for name in http.ok("/ddfs/tags/t:fresh:"):
            urls = http.get(name)["urls"]
            assert len(urls) == 1 and urls[0]
            assert all(http.request(u).status == 200 for u in urls[0])


def test_gc_paranoid_delete_keeps_trash(tmp_path, node_access: str) -> None:
    with one_node(tmp_path, node_access, DDFS_PARANOID_DELETE="1") as m:
        http = HTTP(m)
        run_gc(http)
        http.tag("t:p", [["a"]])
        http.tag("t:p", [["b"]])
        run_gc(http)
        names = files_below(root_of(http), "tag")
        assert len([n for n in names if n.startswith("!trash.t:p$")]) == 1
        assert len([n for n in names if n.startswith("t:p$")]) == 1
        poll_for(lambda: http.ok("/ddfs/ctrl/gc_status") == "", 5)


def test_space_aware_gc_moves_blobs_off_an_overused_node(tmp_path, node_access: str) -> None:
    with three_nodes(tmp_path, node_access, DDFS_SPACE_AWARE="1", **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        full = "127.0.0.2"
        pushed = [http.push("s%d" % i, b"space %d" % i, replicas=2) for i in range(4)]
        targets = http.ok("/ddfs/new_blob/s_inc?replicas=2&include=%s" % full)
        pushed.append([http.ok(t, "PUT", raw=b"on the full node") for t in targets])
        for replicas in pushed:
            http.tag("t:space", [replicas])
        node = m.server.backend.local_ddfs_node(full)
        free, used = node.disk_usage()
        node.reserve_kb = free - 1024  # nearly full: far above the average utilisation
        on_full = [r for r in pushed if full in {parse_ddfs_url(u).host for u in r}]
        run_gc(http)  # extra replicas elsewhere
        for entry in http.get("t:space")["urls"]:
            hosts = {parse_ddfs_url(u).host for u in entry}
            assert len(hosts) == (3 if full in hosts else 2)
        run_gc(http)  # the over-used node drops its surplus copies
        for entry in http.get("t:space")["urls"]:
            hosts = {parse_ddfs_url(u).host for u in entry}
            assert full not in hosts and len(hosts) == 2
            assert all(http.request(u).status == 200 for u in entry)
        for replicas in on_full:
            assert http.request([u for u in replicas if full in u][0]).status == 404


def test_gc_keeps_references_it_cannot_check(tmp_path, node_access: str) -> None:
    with three_nodes(tmp_path, node_access, **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        gone, path = single_copy(http, "gone", b"lost everywhere")
        elsewhere = ["disco://otherhost/ddfs/vol0/blob/%s" % gone[0].split("/blob/")[1]]
        http.tag("t:refs", [gone, elsewhere])
        remove_file(path)  # the only copy is lost
        run_gc(http)
        assert http.get("t:refs")["urls"] == [gone, elsewhere]


def test_gc_running_during_writes_loses_nothing(tmp_path, node_access: str) -> None:
    import threading

    with three_nodes(tmp_path, node_access, **GC_NOW) as m:
        http = HTTP(m)
        run_gc(http)
        stop = threading.Event()
        runs = []

        def collector() -> None:
            while not stop.is_set():
                run_gc(http)
                runs.append(http.ok("/ddfs/ctrl/gc_stats"))

        thread = threading.Thread(target=collector)
        thread.start()
        try:
            for i in range(20):
                replicas = http.push("w%d" % i, b"written %d" % i)
                http.tag("t:busy", [replicas], "?update=1" if i % 2 else "")
                http.ok("/ddfs/tag/t:busy%d" % i, "PUT", [replicas])
        finally:
            stop.set()
            thread.join()
        run_gc(http)
        assert runs
        urls = http.get("t:busy")["urls"]
        assert len(urls) == 20
        assert all(
            entry == http.get("t:busy%d" % i)["urls"][0] for i, entry in enumerate(urls[::-1])
        )
        for entry in urls:
            assert len(entry) == 2 and all(http.request(u).status == 200 for u in entry)


def test_gc_without_progress_is_aborted(tmp_path, caplog) -> None:
    """A node that hangs (here: a blob that is a FIFO nobody writes) stops the run."""
    settings = {"DDFS_GC_PROGRESS_TIMEOUT": "0.5", **GC_NOW}
    with three_nodes(tmp_path, **settings) as m:
        http = HTTP(m)
        run_gc(http)
        replicas, path = single_copy(http, "hang", b"")
        http.tag("t:hang", [replicas])
        remove_file(path)
        os.mkfifo(path)  # re-replication will block reading it
        try:
            caplog.set_level("WARNING", logger="disco.ddfs.gc")
            run_gc(http, timeout=20)
            assert "DDFS GC aborted: no progress" in caplog.text
            assert http.get("t:hang")["urls"] == [replicas]
        finally:
            try:  # let the blocked copy finish (ENXIO: nobody is reading)
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
