"""Tag operations of the DDFS client against a real master (ddfs.md 3.2, 8.1)."""

from __future__ import annotations

import random

import pytest

from disco.error import CommError

PREFIX = "disco:test:"


def names(ddfs, tag) -> list[str]:
    return [ddfs.blob_name(replicas[0]) for replicas in ddfs.blobs(tag)]


def test_update_deduplicates_by_blob_name(ddfs) -> None:
    tag = PREFIX + "blobs"
    ddfs.push(tag, [], update=True)  # creates an empty tag
    assert ddfs.exists(tag) and list(ddfs.blobs(tag)) == []
    for _ in range(5):
        ddfs.push(tag, [(b"data", "dup")] * 2, update=True)
    assert names(ddfs, tag) == ["dup"]
    for _ in range(5):
        ddfs.push(tag, [(b"data", "dup2")], update=True, delayed=True)
    assert sorted(names(ddfs, tag)) == ["dup", "dup2"]
    # no garbage: re-tagging the tag's own urls with update=True writes no new version
    before = ddfs.get(tag)
    ddfs.tag(tag, before["urls"], update=True)
    assert ddfs.get(tag)["id"] == before["id"]


def test_update_keeps_first_appearance_order(ddfs) -> None:
    tag = PREFIX + "order"
    keys = ["k%d" % random.randrange(30) for _ in range(40)]
    for key in keys:
        ddfs.push(tag, [(b"x", key)], update=True)
    first_seen = list(dict.fromkeys(keys))
    assert list(reversed(names(ddfs, tag))) == first_seen


def test_plain_update_and_delayed_appends_mixed(ddfs) -> None:
    tag = PREFIX + "mixed"
    expected: list[str] = []
    for i in range(3):
        ddfs.push(tag, [(b"a", "p%d" % i), (b"b", "p%d" % i)])
        expected += ["p%d" % i] * 2
    for i in range(5):
        ddfs.push(tag, [(b"c", "p%d" % (i % 4))], update=True)
        if i == 3:
            expected.append("p3")
    for i in range(3):
        ddfs.push(tag, [(b"d", "q%d" % i), (b"e", "q%d" % i)], delayed=True)
        expected += ["q%d" % i] * 2
    # plain appends keep both same-named blobs; update adds only names not seen yet
    assert list(reversed(names(ddfs, tag))) == expected


def test_writes(ddfs) -> None:
    ddfs.push(PREFIX + "a", [(b"1", "one")])
    ddfs.push("tag://" + PREFIX + "b", [(b"2", "two")])
    assert ddfs.exists(PREFIX + "a") and ddfs.exists("tag://" + PREFIX + "b")
    assert ddfs.delete(PREFIX + "a") == "deleted"
    assert not ddfs.exists(PREFIX + "a")
    assert ddfs.delete(PREFIX + "never") == "deleted"  # no error for a missing tag

    tag = PREFIX + "tag"
    ddfs.tag(tag, [["urls"]])
    ddfs.delete(tag)
    ddfs.tag("tag://" + tag, [["urls"]])
    ddfs.tag(tag, [["more"]])
    assert sorted(ddfs.urls(tag)) == [["more"], ["urls"]]
    before = ddfs.get(tag)
    location = ddfs.tag(tag, [])
    assert ddfs.get(tag) == before and location and location[0].startswith("disco://")

    put = PREFIX + "put"
    ddfs.put(put, [["urls"]])
    ddfs.put(put, [["tags"]])
    assert ddfs.urls(put) == [["tags"]]
    ddfs.put(PREFIX + "empty", [])
    assert ddfs.exists(PREFIX + "empty") and ddfs.urls(PREFIX + "empty") == []


def test_reads(ddfs) -> None:
    tag = PREFIX + "reads"
    ddfs.push(tag, [(b"blobdata", "blobdata")])
    ddfs.push(tag, [(b"blobdata2", "blobdata2"), (b"", "empty")])
    ddfs.tag(PREFIX + "urls", [["urls"]])
    meta = PREFIX + "meta"
    ddfs.tag(meta, [["tag://" + PREFIX + "urls"], ["tag://" + meta], ["tag://" + tag]])

    blobs = list(ddfs.blobs(tag))
    assert [b[0].split("/")[-1].split("$")[0] for b in blobs] == ["blobdata2", "empty", "blobdata"]
    assert list(ddfs.blobs(PREFIX + "missing")) == []
    with pytest.raises(CommError) as e:
        list(ddfs.blobs(PREFIX + "missing", ignore_missing=False))
    assert e.value.code == 404

    pulled = [(f.read(), len(f)) for f in ddfs.pull(tag)]
    assert pulled == [(b"blobdata2", 9), (b"", 0), (b"blobdata", 8)]
    assert [f.read() for f in ddfs.pull(tag, blobfilter=lambda n: n == "blobdata")] == [b"blobdata"]
    empty = next(ddfs.pull(tag, blobfilter=lambda n: n == "empty"))
    assert len(empty) == 0 and empty.read() == b""
    missing = ddfs.pull(PREFIX + "missing")
    with pytest.raises(CommError) as e:
        next(missing)
    assert e.value.code == 404

    assert ddfs.exists(tag) and ddfs.exists("tag://" + tag) and not ddfs.exists(PREFIX + "x")
    found = list(ddfs.findtags([meta]))  # terminates on the self reference
    assert [t for t, _, _ in found] == ["tag://" + meta, "tag://" + PREFIX + "urls", "tag://" + tag]
    # [quirk] a bare word such as "urls" is a tag name, so it is a child tag, not a blob
    assert found[1][1] == ["tag://urls"] and found[1][2] == [] and found[0][2] == []
    with pytest.raises(CommError) as e:
        ddfs.get(PREFIX + "missing")
    assert e.value.code == 404
    assert ddfs.get([tag])["id"].startswith(tag + "$")
    assert set(ddfs.get(tag)) == {"version", "id", "last-modified", "urls", "user-data"}
    assert tag in ddfs.list() and tag in ddfs.list(PREFIX)
    assert ddfs.list(PREFIX + "notag") == []

    walked = list(ddfs.walk(meta))
    assert walked[0] == (
        ("tag://" + meta,),
        ["tag://" + PREFIX + "urls", "tag://" + meta, "tag://" + tag],
        [],
    )
    paths = [path for path, _, _ in walked]
    assert paths == [
        ("tag://" + meta,),
        ("tag://" + meta, "tag://" + PREFIX + "urls"),
        ("tag://" + meta, "tag://" + PREFIX + "urls", "tag://urls"),  # missing
        ("tag://" + meta, "tag://" + tag),
    ]
    assert ddfs.tags(meta) == ["tag://" + PREFIX + "urls", "tag://" + meta, "tag://" + tag]
    assert list(ddfs.blobs(meta)) == blobs
    assert list(ddfs.walk(PREFIX + "missing")) == [(("tag://" + PREFIX + "missing",), (), ())]


def test_attributes(ddfs) -> None:
    tag = PREFIX + "attrs"
    ddfs.setattr(tag, "a1", "v1")
    ddfs.setattr(tag, "a2", "v2")
    assert ddfs.getattr(tag, "a1") == "v1"
    assert ddfs.attrs(tag) == {"a1": "v1", "a2": "v2"}
    assert ddfs.delattr(tag, "a2") == "deleted"
    assert ddfs.attrs(tag) == {"a1": "v1"}
    ddfs.delattr(tag, "unknown")  # no error
    ddfs.setattr(tag, "a1", "v3")
    assert ddfs.getattr(tag, "a1") == "v3"
    with pytest.raises(CommError) as e:
        ddfs.setattr(tag, "ddfs:a1", "v")
    assert e.value.code == 404
    assert ddfs.getattr(tag, "ddfs:urls") == [] and ddfs.getattr(tag, "ddfs:read-token") is None
    with pytest.raises(CommError) as e:
        ddfs.getattr(tag, "nothere")
    assert e.value.code == 404


def test_invalid_tag_name_changes_nothing(ddfs) -> None:
    before = ddfs.list()
    for call in (
        lambda: ddfs.tag("bad name", [["x"]]),
        lambda: ddfs.put("bad.name", []),
        lambda: ddfs.get("bad+name"),
        lambda: ddfs.push("bad!", [(b"x", "ok")]),
        lambda: ddfs.new_blob("bad.prefix"),
    ):
        with pytest.raises(CommError) as e:
            call()
        assert e.value.code == 403 and "Invalid tag" in e.value.msg
    assert ddfs.list() == before
    assert not ddfs.exists("bad name")  # 403 means "no such tag"


def test_delete_then_recreate(ddfs) -> None:
    tag = PREFIX + "recreate"
    ddfs.push(tag, [(b"old", "old")])
    ddfs.delete(tag)
    assert tag not in ddfs.list()
    ddfs.push(tag, [(b"again", "again")])
    assert ddfs.exists(tag) and names(ddfs, tag) == ["again"]  # old entries are gone
    ddfs.delete(tag)
    ddfs.push(tag, [(b"new", "new")], token="tok")
    assert ddfs.exists(tag) and tag in ddfs.list(tag)
    with pytest.raises(CommError) as e:  # created with a token: unreadable without it
        ddfs.urls(tag)
    assert e.value.code == 401
    assert [ddfs.blob_name(r[0]) for r in ddfs.urls(tag, token="tok")] == ["new"]


def test_concurrent_clients_lose_no_append(cluster) -> None:
    """ddfs.md 1.8: appends to one tag from several clients at once all land."""
    from concurrent.futures import ThreadPoolExecutor

    from disco.ddfs import DDFS

    tag = PREFIX + "concurrent"

    def client(n: int) -> None:
        ddfs = DDFS(cluster.url)
        for i in range(5):
            ddfs.push(tag, [(b"%d-%d" % (n, i), "c%d_%d" % (n, i))], delayed=bool(i % 2))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(client, range(4)))
    got = sorted(DDFS(cluster.url).blob_name(r[0]) for r in DDFS(cluster.url).urls(tag))
    assert got == sorted("c%d_%d" % (n, i) for n in range(4) for i in range(5))


def test_tags_on_another_master(cluster, ddfs) -> None:
    """``tag://host:port/name`` reads from that master; child tags without a host are
    looked up on the same master (relativizetags)."""
    from disco.ddfs import DDFS

    ddfs.tag(PREFIX + "leaf", [["raw://leaf"]])
    ddfs.tag(PREFIX + "root", [["tag://" + PREFIX + "leaf"]])
    elsewhere = DDFS("http://127.0.0.1:9")  # a master that is not there
    remote = "tag://127.0.0.1:%d/%s" % (cluster.port, PREFIX + "root")
    assert elsewhere.urls(remote) == [["tag://" + PREFIX + "leaf"]]
    found = list(elsewhere.findtags([remote]))
    assert [t for t, _, _ in found] == [
        remote,
        "tag://127.0.0.1:%d/%s" % (cluster.port, PREFIX + "leaf"),
    ]
    assert list(elsewhere.blobs(remote)) == [["raw://leaf"]]
