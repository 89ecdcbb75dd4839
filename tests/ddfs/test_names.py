"""Pure DDFS rules: names, timestamps, ids, URLs, entry names, merges, placement
(ddfs.md 1.1-1.6, 1.9, 5.6)."""

from __future__ import annotations

import hashlib
import random

import pytest

from disco.ddfs.names import (
    InvalidName,
    Timestamp,
    TimestampClock,
    blob_prefix,
    disco_url,
    entry_name,
    hash_dir,
    is_url_list,
    parse_ddfs_url,
    parse_object_id,
    parse_tag_url,
    put_url,
    safe_name,
    valid_name,
)
from disco.ddfs.placement import NodeSpace, NotEnoughNodes, blob_targets, choose_nodes
from disco.ddfs.tagdoc import CorruptTag, TagDoc, append_urls, dedup_new
from tests.ddfs.conftest import STORED_KEYS


def test_names() -> None:
    assert valid_name("data:log-2023_x@y")
    assert valid_name("x" * 511) and not valid_name("x" * 512)
    for bad in ("", "a.b", "a/b", "a$b", "+deleted", "a b", "ä", None, 5):
        assert not valid_name(bad)
    assert safe_name("chekhov.txt") == "chekhov_txt"
    assert safe_name(b"a b/c") == "a_b_c"
    assert blob_prefix("p" * 200) == "p" * 200
    assert blob_prefix("p" * 201) == hashlib.md5(b"p" * 201).hexdigest()


def test_timestamps() -> None:
    ts = Timestamp.from_time(1700123456.654321)
    assert ts == Timestamp(1700, 123456, 654321)
    assert str(ts) == "6a4-1e240-9fbf1"
    assert Timestamp.parse("6a4-1e240-9fbf1") == ts
    assert str(Timestamp(0, 5, 0)) == "00-5-00"
    assert Timestamp.parse("00-5-00") == Timestamp(0, 5, 0)
    # compared as integer triples, never as strings
    assert Timestamp.parse("6a4-ff-1") < Timestamp.parse("6a4-100-0")
    for bad in ("1-2", "1-2-3-4", "g-1-2", "1--2", "-1-2-3", "1-2-+3"):
        with pytest.raises(InvalidName):
            Timestamp.parse(bad)
    clock = TimestampClock()
    stamps = [clock.now(1000.0) for _ in range(100)]
    assert stamps == sorted(set(stamps))


def test_object_ids_and_urls() -> None:
    oid = "chekhov_txt-0$6a4-1e240-9fbf1"
    assert hash_dir(oid) == "c0"  # the example of 1.3
    assert parse_object_id(oid) == ("chekhov_txt-0", Timestamp(1700, 123456, 654321))
    for bad in ("x", "x$y$z", "a.b$1-2-3", "+deleted$1-2-3", "x$1-2"):
        with pytest.raises(InvalidName):
            parse_object_id(bad)
    assert parse_object_id("+deleted$1-2-3", internal=True).name == "+deleted"
    url = disco_url("node1", "vol0", "blob", oid)
    assert url == "disco://node1/ddfs/vol0/blob/c0/" + oid
    parsed = parse_ddfs_url(url)
    assert parsed == ("node1", "vol0", "blob", oid) and parsed.relpath == url.split("/ddfs/")[1]
    assert parse_ddfs_url("http://node1:8989/ddfs/vol1/tag/c0/" + oid).kind == "tag"
    assert parse_ddfs_url("disco://node1/ddfs/vol0/blob/00/" + oid) is None  # wrong hash dir
    assert parse_ddfs_url("tag://x") is None and parse_ddfs_url("raw://abc") is None
    assert put_url("n", 8990, oid) == "http://n:8990/ddfs/" + oid


def test_tag_urls() -> None:
    assert parse_tag_url("tag://name") == ("name", "", None)
    assert parse_tag_url("tag://host/name") == ("name", "host", None)
    assert parse_tag_url("tag://host:9/name") == ("name", "host:9", None)
    assert parse_tag_url("tag://TOKEN@/name") == ("name", "", "TOKEN")
    assert parse_tag_url("tag://user:r@host/name") == ("name", "host", "r")
    assert parse_tag_url("disco://x") is None


def test_entry_names() -> None:
    assert entry_name(["tag://other"]) == "other"
    assert entry_name(["disco://node1/ddfs/vol0/blob/ab/dup$6a4-1-2", "x"]) == "dup"
    # [quirk] a two-letter host matches early
    assert entry_name(["disco://n1/ddfs/vol0/blob/ab/dup$6a4-1-2"]) == "ddfs/vol0/blob/ab/dup"
    assert entry_name(["urls"]) is None
    assert entry_name(["http://host/ab/no-dollar"]) is None
    assert entry_name([]) is None
    assert entry_name(["x://host/ab/p$1$2"]) == "p$1"  # up to the last $


def test_url_list_shape() -> None:
    assert is_url_list([]) and is_url_list([[]]) and is_url_list([["a", "b"], ["c"]])
    for bad in ({}, "x", [["a", 1]], ["a"], [None]):
        assert not is_url_list(bad)


def b(prefix: str) -> list[str]:
    return ["disco://node1/ddfs/vol0/blob/ab/%s$6a4-1-2" % prefix]


def test_append_semantics() -> None:
    old = [b("a")]
    assert append_urls(old, [b("b"), b("c")], False) == [b("b"), b("c"), b("a")]
    assert append_urls(old, [], False) is None
    assert append_urls(old, [b("a")], True) is None
    assert append_urls(old, [b("b"), b("c"), b("b")], True) == [b("c"), b("b"), b("a")]
    assert append_urls(old, [["x"], ["x"]], True) == [["x"], ["x"], b("a")]  # nameless
    assert dedup_new([b("a"), b("a"), ["tag://t"], ["tag://t"]]) == [["tag://t"], b("a")]


def test_hundred_update_pushes_keep_first_appearance_order() -> None:
    """8.1: reversed blob order equals the order of first appearance."""
    rng = random.Random(5)
    keys = [str(rng.randint(0, 30)) for _ in range(100)]
    urls: list[list[str]] = []
    for k in keys:
        urls = append_urls(urls, [b("k" + k)], True) or urls
    seen = list(dict.fromkeys(keys))
    assert [entry_name(u)[1:] for u in reversed(urls)] == seen


def test_mixed_plain_update_sequence() -> None:
    """8.1 "mixed": plain pushes keep duplicates, update adds only new names."""
    urls: list[list[str]] = []
    expected: list[str] = []
    for i in range(10):
        urls = append_urls(urls, [b("%d" % i), b("%d" % i)], False) or urls
        expected += ["%d" % i] * 2
    for i in range(15):
        urls = append_urls(urls, [b("%d" % i)], True) or urls
        if i >= 10:
            expected.append("%d" % i)
    for i in range(10):
        urls = append_urls(urls, [b("d%d" % i), b("d%d" % i)], False) or urls
        expected += ["d%d" % i] * 2
    assert [entry_name(u) for u in reversed(urls)] == expected


def test_tag_document_lenient_read_and_full_write() -> None:
    doc = TagDoc.decode(b'{"id":"t$1-2-3","urls":[["a"]]}')
    assert doc.read_token is None and doc.user_data == {} and doc.urls == [["a"]]
    assert list(doc.stored()) == STORED_KEYS
    assert b'"read-token":null' in doc.encode()
    for bad in (b"", b"[]", b'{"id":"bad"}', b'{"id":"t$1-2-3","urls":"x"}', b"\xff"):
        with pytest.raises(CorruptTag):
            TagDoc.decode(bad)


def test_placement() -> None:
    gib = 1024 * 1024
    nodes = [NodeSpace("a", 10 * gib, 1), NodeSpace("b", 5 * gib, 1), NodeSpace("c", 1, 1)]
    for _ in range(20):
        chosen = choose_nodes(nodes, 2, min_free_kb=gib)
        assert set(chosen) == {"a", "b"}  # only these have more than 1 GiB free
    assert choose_nodes(nodes, 3, min_free_kb=gib) == ["a", "b", "c"]  # emptiest first
    assert choose_nodes(nodes, 0, min_free_kb=gib) == []
    weighted = choose_nodes(nodes, 2, min_free_kb=gib, space_aware=True)
    assert sorted(weighted) == ["a", "b"]
    args = dict(min_free_kb=gib, writable={"a", "b", "c"}, exclude=set())
    assert blob_targets(nodes, 1, known=3, include=["c"], **args) == ["c"]
    with pytest.raises(NotEnoughNodes):
        blob_targets(nodes, 4, known=3, include=[], **args)
    with pytest.raises(NotEnoughNodes):
        blob_targets(nodes, 2, known=3, include=[], **{**args, "writable": {"a"}})
