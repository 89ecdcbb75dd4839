"""The master's tag endpoints over plain HTTP (ddfs.md 1.5-1.11, 2.3, 2.4.4-2.4.11, 8.1)."""

from __future__ import annotations

import asyncio
import json
import threading

from tests.ddfs.conftest import HTTP, STORED_KEYS

BLOB = "disco://localhost/ddfs/vol0/blob/ab/%s$6a4-1-2"


def blob(prefix: str) -> list[str]:
    return [BLOB % prefix]


def names(urls: list[list[str]]) -> list[str]:
    return [u[0].rsplit("/", 1)[-1].split("$")[0] for u in urls]


# -- documents and versions (1.5, 1.7) ---------------------------------------------------
def test_served_document_has_five_keys_and_stored_file_seven(ddfs: HTTP) -> None:
    locations = ddfs.tag("t:doc", [["urls"]])
    doc = ddfs.get("t:doc")
    assert list(doc) == ["version", "id", "last-modified", "urls", "user-data"]
    assert doc["version"] == 1 and doc["urls"] == [["urls"]] and doc["user-data"] == {}
    assert doc["id"].startswith("t:doc$")
    assert len(doc["last-modified"]) == 19 and doc["last-modified"][4] == "/"
    assert len(locations) == 1 and locations[0].startswith("disco://localhost/ddfs/vol0/tag/")
    assert locations[0].endswith("/" + doc["id"])
    stored = ddfs.request(locations[0])  # the version file on the node's data port
    assert stored.status == 200
    assert list(json.loads(stored.body)) == STORED_KEYS


def test_every_change_is_a_new_version_and_empty_append_is_not(ddfs: HTTP) -> None:
    first = ddfs.tag("t:v", [["a"]])
    id1 = ddfs.get("t:v")["id"]
    assert ddfs.tag("t:v", []) == first  # no new version, current locations
    assert ddfs.get("t:v")["id"] == id1
    ddfs.ok("/ddfs/tag/t:v", "PUT", [["a"]])  # same urls, still a new version
    id2 = ddfs.get("t:v")["id"]
    assert id2 != id1
    ddfs.ok("/ddfs/tag/t:v/x", "PUT", "1")
    ddfs.ok("/ddfs/tag/t:v/nothing", "DELETE")  # always a new version
    id4 = ddfs.get("t:v")["id"]
    assert len({id1, id2, id4}) == 3


def test_plain_append_puts_request_entries_first_in_order(ddfs: HTTP) -> None:
    ddfs.tag("t:app", [blob("a"), blob("b")])
    ddfs.tag("t:app", [blob("c"), blob("a")])
    assert names(ddfs.get("t:app")["urls"]) == ["c", "a", "a", "b"]


def test_update_deduplicates_by_prefix_and_prepends_one_by_one(ddfs: HTTP) -> None:
    ddfs.tag("t:upd", [], "?update=1")
    assert ddfs.get("t:upd")["urls"] == []
    ddfs.tag("t:upd", [blob("dup"), blob("dup")], "?update=1")
    id1 = ddfs.get("t:upd")["id"]
    for _ in range(3):
        ddfs.tag("t:upd", [blob("dup"), blob("dup")], "?update=1")
    assert names(ddfs.get("t:upd")["urls"]) == ["dup"]
    assert ddfs.get("t:upd")["id"] == id1  # nothing new: no new version
    ddfs.tag("t:upd", [blob("x"), blob("y"), ["tag://other"], ["tag://other"]], "?update=1")
    urls = ddfs.get("t:upd")["urls"]
    assert urls[0] == ["tag://other"] and names(urls[1:]) == ["y", "x", "dup"]  # [quirk]
    # re-tagging the tag's own urls with update keeps its id (no garbage)
    before = ddfs.get("t:upd")
    ddfs.tag("t:upd", before["urls"], "?update=1")
    assert ddfs.get("t:upd")["id"] == before["id"]


def test_update_flag_is_on_for_any_nonempty_value(ddfs: HTTP) -> None:
    ddfs.tag("t:flag", [blob("a")])
    ddfs.tag("t:flag", [blob("a")], "?update=0")  # [quirk] "0" is on
    assert names(ddfs.get("t:flag")["urls"]) == ["a"]
    ddfs.tag("t:flag", [blob("a")], "?update=")  # empty is off
    assert names(ddfs.get("t:flag")["urls"]) == ["a", "a"]


def test_update_on_missing_tag_deduplicates_and_empty_entry_is_nameless(ddfs: HTTP) -> None:
    ddfs.tag("t:new", [blob("a"), blob("a"), [], []], "?update=1")
    urls = ddfs.get("t:new")["urls"]
    assert urls.count([]) == 2 and names([u for u in urls if u]) == ["a"]


def test_delayed_appends_merge_into_one_version(ddfs: HTTP) -> None:
    ddfs.tag("t:del", [blob("base")])
    id0 = ddfs.get("t:del")["id"]
    tags = ddfs.master.server.ddfs.tags

    async def five() -> list[object]:
        posts = [tags.append("t:del", [blob("p%d" % i)], None, delayed=True) for i in range(5)]
        return await asyncio.gather(*posts)

    replies = asyncio.run_coroutine_threadsafe(five(), ddfs.master._loop).result(10)
    doc = ddfs.get("t:del")
    assert names(doc["urls"]) == ["p4", "p3", "p2", "p1", "p0", "base"]  # later ones first
    assert doc["id"] != id0
    assert all(r == replies[0] for r in replies)  # one version, the same reply for all
    assert replies[0][0].endswith("/" + doc["id"])


def test_delayed_append_over_http_waits_for_the_flush(ddfs: HTTP) -> None:
    ddfs.tag("t:dh", [blob("base")])
    locations = ddfs.tag("t:dh", [blob("x")], "?delayed=1")
    doc = ddfs.get("t:dh")
    assert names(doc["urls"]) == ["x", "base"]
    assert locations[0].endswith("/" + doc["id"])


def test_delayed_update_keeps_first_of_a_prefix(ddfs: HTTP) -> None:
    for _ in range(5):
        ddfs.tag("t:dd", [blob("dup")], "?update=1")
    for _ in range(5):
        ddfs.tag("t:dd", [blob("dup2")], "?update=1&delayed=1")
    assert sorted(names(ddfs.get("t:dd")["urls"])) == ["dup", "dup2"]


def test_delayed_on_missing_tag_is_immediate(ddfs: HTTP) -> None:
    ddfs.tag("t:dmiss", [blob("a")], "?delayed=1", token="secret1")
    assert ddfs.request("/ddfs/tag/t:dmiss").status == 401
    assert ddfs.ok("/ddfs/tag/t:dmiss/ddfs:write-token", token="secret1") == "secret1"


def test_concurrent_appends_lose_nothing(ddfs: HTTP) -> None:
    ddfs.tag("t:race", [])

    def worker(n: int) -> None:
        for i in range(5):
            ddfs.tag("t:race", [blob("w%d_%d" % (n, i))])

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ddfs.get("t:race")["urls"]) == 20


# -- PUT, attributes (2.4.6, 2.4.8, 2.4.9, 2.4.11) ----------------------------------------
def test_put_replaces_and_creates(ddfs: HTTP) -> None:
    ddfs.ok("/ddfs/tag/t:put", "PUT", [["urls"]])
    ddfs.ok("/ddfs/tag/t:put", "PUT", [["tags"]])
    assert ddfs.get("t:put")["urls"] == [["tags"]]
    ddfs.ok("/ddfs/tag/t:empty", "PUT", [])
    assert ddfs.get("t:empty")["urls"] == []
    ddfs.ok("/ddfs/tag/t:put/ddfs:urls", "PUT", [["x"]])
    assert ddfs.ok("/ddfs/tag/t:put/ddfs:urls") == [["x"]]


def test_attributes_round_trip(ddfs: HTTP) -> None:
    ddfs.ok("/ddfs/tag/t:attr/a1", "PUT", "v1")  # creates the tag
    ddfs.ok("/ddfs/tag/t:attr/a2", "PUT", "v2")
    ddfs.ok("/ddfs/tag/t:attr/a1", "PUT", "v1b")
    assert ddfs.ok("/ddfs/tag/t:attr/a1") == "v1b"
    assert ddfs.get("t:attr")["user-data"] == {"a1": "v1b", "a2": "v2"}
    assert ddfs.ok("/ddfs/tag/t:attr/a2", "DELETE") == "deleted"
    assert ddfs.ok("/ddfs/tag/t:attr/unknown", "DELETE") == "deleted"
    assert ddfs.get("t:attr")["user-data"] == {"a1": "v1b"}
    ddfs.ok("/ddfs/tag/t:attr/with/slash", "PUT", "s")
    assert ddfs.ok("/ddfs/tag/t:attr/with/slash") == "s"
    assert ddfs.ok("/ddfs/tag/t:attr/ddfs:read-token") is None
    ddfs.ok("/ddfs/tag/t:attr/ddfs:urls", "DELETE")
    assert ddfs.get("t:attr")["urls"] == []


def test_attribute_errors(ddfs: HTTP) -> None:
    ddfs.tag("t:ae", [])
    cases = [
        ("/ddfs/tag/t:ae/nope", "GET", None, 404, "Tag attribute not found."),
        ("/ddfs/tag/t:ae/ddfs:a1", "PUT", "x", 404, "Tag attribute not found."),
        ("/ddfs/tag/t:ae/ddfs:a1", "GET", None, 404, "Tag attribute not found."),
        ("/ddfs/tag/t:ae/ddfs:a1", "DELETE", None, 404, "Tag attribute not found."),
        ("/ddfs/tag/t:ae/a", "PUT", 42, 403, "Invalid attribute key or value"),
        ("/ddfs/tag/t:ae/ddfs:read-token", "PUT", ["x"], 403, "Invalid attribute key or value"),
        ("/ddfs/tag/t:ae/ddfs:urls", "PUT", "x", 403, "Invalid attribute key or value"),
        ("/ddfs/tag/t:ae", "PUT", [["a"], "b"], 403, "Invalid attribute key or value"),
        ("/ddfs/tag/t:ae/a", "PUT", "x" * 5000, 403, "Attribute value too big."),
        ("/ddfs/tag/t:ae/" + "n" * 1025, "PUT", "x", 403, "Attribute name too big."),
        ("/ddfs/tag/t:ae/" + "n" * 1025, "GET", None, 403, "Attribute name too big."),
        ("/ddfs/tag/t:missing/a", "DELETE", None, 404, "Tag attribute not found."),
    ]
    id0 = ddfs.get("t:ae")["id"]
    for path, method, body, status, text in cases:
        answer = ddfs.request(path, method, body)
        assert (answer.status, answer.text) == (status, text), (path, method, answer)
        assert answer.headers["Content-Type"].startswith("text/plain")
    assert ddfs.get("t:ae")["id"] == id0  # bad input changed nothing
    assert ddfs.request("/ddfs/tag/t:missing").status == 404


def test_too_many_attributes(ddfs: HTTP) -> None:
    ddfs.ok("/ddfs/tag/t:many/a0", "PUT", "v")
    tags = ddfs.master.server.ddfs.tags

    async def fill() -> None:  # one version with 1000 attributes
        doc = (await tags._load("t:many")).doc
        await tags._new_version(doc, user_data={"a%d" % i: "v" for i in range(1000)})

    asyncio.run_coroutine_threadsafe(fill(), ddfs.master._loop).result(60)
    answer = ddfs.request("/ddfs/tag/t:many/a1", "PUT", "w")  # checked even when overwriting
    assert (answer.status, answer.text) == (403, "Too many attributes")
    assert ddfs.request("/ddfs/tag/t:many/new", "PUT", "w").status == 403
    assert len(ddfs.get("t:many")["user-data"]) == 1000
    ddfs.ok("/ddfs/tag/t:many/a1", "DELETE")
    ddfs.ok("/ddfs/tag/t:many/new", "PUT", "w")  # 999 + 1


# -- bad input (2.3) ------------------------------------------------------------------------
def test_invalid_names_bodies_and_paths(ddfs: HTTP) -> None:
    ddfs.tag("t:ok", [["a"]])
    cases = [
        ("/ddfs/tag/bad.name", "GET", None, None, 403, "Invalid tag"),
        ("/ddfs/tag/bad%20name", "POST", [], None, 403, "Invalid tag"),
        ("/ddfs/tag/%2Bdeleted", "GET", None, None, 403, "Invalid tag"),
        ("/ddfs/tag/" + "x" * 512, "GET", None, None, 403, "Invalid tag"),
        ("/ddfs/tag/t:ok", "POST", {"a": 1}, None, 403, "Invalid url object"),
        ("/ddfs/tag/t:ok", "POST", [["a", 1]], None, 403, "Invalid url object"),
        ("/ddfs/tag/t:ok", "POST", ["a"], None, 403, "Invalid url object"),
        ("/ddfs/tag/t:ok", "POST", None, b"[[", 403, "Invalid request body."),
        ("/ddfs/tag/t:ok", "PUT", None, b"\xff", 403, "Invalid request body."),
        ("/ddfs/tag/t:nope", "GET", None, None, 404, "Tag not found."),
        ("/ddfs/tag/t:ok", "PATCH", None, None, 404, "Not found."),
        ("/ddfs/nothing/here", "POST", None, b"", 404, "Not found."),
        ("/ddfs/ctrl/unknown", "GET", None, None, 404, "Not found."),
    ]
    for path, method, body, raw, status, text in cases:
        answer = ddfs.request(path, method, body, raw=raw)
        assert (answer.status, answer.text) == (status, text), (path, method, answer)
    assert ddfs.get("t:ok")["urls"] == [["a"]]
    assert ddfs.ok("/ddfs/tags") == ["t:ok"]


def test_trailing_slash_is_no_attribute(ddfs: HTTP) -> None:
    ddfs.tag("t:slash", [["a"]])
    assert ddfs.ok("/ddfs/tag/t:slash/") == ddfs.get("t:slash")


# -- listing (2.4.4) ---------------------------------------------------------------------
def test_list_by_prefix_sorted_without_deleted(ddfs: HTTP) -> None:
    for name in ("disco:test:b", "disco:test:a", "other", "disco:x"):
        ddfs.tag(name, [])
    ddfs.ok("/ddfs/tag/disco:x", "DELETE")
    assert ddfs.ok("/ddfs/tags") == ["disco:test:a", "disco:test:b", "other"]
    assert ddfs.ok("/ddfs/tags/") == ["disco:test:a", "disco:test:b", "other"]
    assert ddfs.ok("/ddfs/tags/disco:test") == ["disco:test:a", "disco:test:b"]
    assert ddfs.ok("/ddfs/tags/disco:test/") == ["disco:test:a", "disco:test:b"]
    assert ddfs.ok("/ddfs/tags/disco:test:notag") == []
    assert ddfs.ok("/ddfs/tags/disco/test") == []  # no / to : translation (quirk)
    assert ddfs.ok("/ddfs/tagsoth") == ["other"]  # [quirk]


# -- deletion (1.11) -----------------------------------------------------------------------
def test_delete_tombstones_and_recreate_starts_empty(ddfs: HTTP) -> None:
    ddfs.tag("t:gone", [["a"]])
    ddfs.ok("/ddfs/tag/t:gone/k", "PUT", "v")
    assert ddfs.ok("/ddfs/tag/t:gone", "DELETE") == "deleted"
    assert ddfs.request("/ddfs/tag/t:gone").status == 404
    assert ddfs.request("/ddfs/tag/t:gone/k").status == 404
    assert ddfs.ok("/ddfs/tag/t:never", "DELETE") == "deleted"
    ddfs.tag("t:gone", [["b"]])
    doc = ddfs.get("t:gone")
    assert doc["urls"] == [["b"]] and doc["user-data"] == {}
    assert ddfs.ok("/ddfs/tags/t:gone") == ["t:gone"]
    deleted = ddfs.master.server.ddfs.tags
    names = asyncio.run_coroutine_threadsafe(deleted.deleted_names(), ddfs.master._loop).result()
    assert names == {"t:never"}


def test_internal_tags_work_as_tags(ddfs: HTTP) -> None:
    for name in ("disco:job:oob:Job@6b0:1:2", "disco:results:Job@6b0:1:2"):
        ddfs.tag(name, [blob("key")], "?delayed=1")
        assert names(ddfs.get(name)["urls"]) == ["key"]
        assert ddfs.ok("/ddfs/tag/%s" % name, "DELETE") == "deleted"
        assert ddfs.request("/ddfs/tag/%s" % name).status == 404


# -- durability ------------------------------------------------------------------------------
def test_restarted_master_keeps_tags_versions_and_deletions(tmp_path) -> None:
    from disco.embedded import EmbeddedMaster

    root = tmp_path / "disco"
    with EmbeddedMaster(root=root) as m:
        http = HTTP(m)
        http.tag("t:keep", [["a"]], token="tok")
        http.ok("/ddfs/tag/t:keep/k", "PUT", "v", token="tok")
        before = http.get("t:keep", token="tok")
        http.tag("t:dead", [])
        http.ok("/ddfs/tag/t:dead", "DELETE")
    with EmbeddedMaster(root=root) as m:
        http = HTTP(m)
        assert http.get("t:keep", token="tok") == before
        assert http.request("/ddfs/tag/t:keep").status == 401
        assert http.request("/ddfs/tag/t:dead").status == 404
        assert http.ok("/ddfs/tags") == ["t:keep"]
        http.tag("t:keep", [["b"]], token="tok")
        assert http.get("t:keep", token="tok")["id"] != before["id"]
