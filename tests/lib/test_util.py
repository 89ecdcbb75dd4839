"""``disco.util`` (library.md 7) with the spec's examples, index files (16.3), external sort (16.5)."""

from __future__ import annotations

import functools
import gzip
import os

import pytest

from disco import util
from disco.ddfs import DDFS, canonizetag, istag, tagname
from disco.error import DataError, DiscoError

DPORT = 8989


def test_iteration_helpers() -> None:
    assert util.isiterable([1]) and not util.isiterable("ab") and not util.isiterable(b"ab")
    assert util.listify("ab") == ["ab"] and util.listify(b"ab") == [b"ab"]
    assert util.listify((1, 2)) == [1, 2]
    assert list(util.flatten([1, [2, ["ab", (3,)]], b"cd"])) == [1, 2, "ab", 3, b"cd"]
    assert util.chainify([[1, 2], [3]]) == [1, 2, 3]
    assert util.kvify((1, 2)) == (1, 2) and util.kvify("x") == ("x", None)
    assert util.iskv((1, 2)) and not util.iskv([1, 2]) and util.key((5, 6)) == 5
    assert util.ilen(iter(range(7))) == 7 and util.identity(3) == 3
    assert util.partition(range(5), lambda x: x % 2) == ([1, 3], [0, 2, 4])
    items = list(range(20))
    assert sorted(util.shuffled(items)) == items


def test_kvgroup_groups_consecutive_keys_only() -> None:
    pairs = [("a", 1), ("a", 2), ("b", 3), ("a", 4)]
    assert [(k, list(vs)) for k, vs in util.kvgroup(pairs)] == [
        ("a", [1, 2]),
        ("b", [3]),
        ("a", [4]),
    ]


def test_dsorted_with_float_buffer(tmp_path) -> None:
    data = [5, 3, 9, 1, 7, 2, 8]
    assert list(util.dsorted(data, buffer_size=2.0, tempdir=str(tmp_path))) == sorted(data)


def test_argcount() -> None:
    def f(a, b, c=1, *args, d=2, **kw):
        pass

    class C:
        def m(self, x, y):
            pass

    assert util.argcount(f) == 3
    assert util.argcount(functools.partial(f, 1)) == 2
    assert util.argcount(C().m) == 2
    assert util.argcount(lambda: 0) == 0


def test_reify_globalize_hexhash_format_size() -> None:
    assert util.reify("os.path.join") is os.path.join
    assert util.reify("len") is len
    ns: dict = {}
    exec("def g():\n    return injected", ns)  # noqa: S102
    util.globalize(ns["g"], {"injected": 42})
    assert ns["g"]() == 42
    assert util.hexhash(b"WordCount@6b0:5464e:dc072") == "82"
    assert util.hexhash("WordCount@6b0:5464e:dc072") == "82"
    assert util.format_size(12.3 * 1024**2) == "12.3MB"
    assert util.format_size(10) == "10.0 bytes"


def test_schemesplit_and_netloc() -> None:
    assert util.schemesplit("http://h:1/p") == ("http", "h:1/p")
    assert util.schemesplit("/a/b") == ("", "/a/b")
    loc = util.netloc.parse("user:tok@host:8989")
    assert (loc.host, loc.port, str(loc)) == ("host", "8989", "host:8989")
    assert str(util.netloc.parse("host")) == "host" and not util.netloc.parse("")


def test_urlsplit() -> None:
    assert util.urlsplit("tag://name") == ("tag", ("", ""), "name")
    assert util.urlsplit("tag://host/name") == ("tag", ("host", ""), "name")
    assert util.urlsplit("disco://h/disco/h/ab/j/f", disco_port=DPORT) == (
        "http",
        ("h", "8989"),
        "disco/h/ab/j/f",
    )
    assert util.urlsplit(
        "disco://h/disco/h/ab/j/f", localhost="h", disco_port=DPORT, disco_data="/data"
    ) == ("file", ("", ""), "/data/h/ab/j/f")
    assert util.urlsplit(
        "http://h:8989/ddfs/vol0/blob/x", localhost=True, disco_port=DPORT, ddfs_data="/ddfs"
    ) == ("file", ("", ""), "/ddfs/vol0/blob/x")
    assert util.urlsplit("http://h:80/p", localhost="h", disco_port=DPORT) == (
        "http",
        ("h", "80"),
        "p",
    )


def test_urljoin_urltoken_localize() -> None:
    assert util.urljoin(("http", util.netloc(("h", "1")), "p")) == "http://h:1/p"
    assert util.urljoin(("", "", "p")) == "p"
    assert util.urltoken("http://user:tok@h/p") == "tok"
    assert util.urltoken("http://tok@h/p") == "tok"
    assert util.urltoken("http://h/p") is None
    assert util.localize("ddfs/a/b", ddfs_data="/dd", disco_data="/d") == "/dd/a/b"
    assert util.localize("disco/a/b", ddfs_data="/dd", disco_data="/d") == "/d/a/b"


def test_urlresolve(monkeypatch) -> None:
    monkeypatch.setenv("DISCO_PORT", "8989")
    assert util.urlresolve("disco://h/disco/x") == "http://h:8989/disco/x"
    assert util.urlresolve("dir://h/disco/h/ab/j/.disco/m-0-1.results") == (
        "http://h:8989/disco/h/ab/j/.disco/m-0-1.results"
    )
    assert util.urlresolve("tag://t", master="http://m:8989") == "http://m:8989/ddfs/tag/t"
    monkeypatch.setenv("DISCO_MASTER", "http://mm:1234")
    assert util.urlresolve("tag://t") == "http://mm:1234/ddfs/tag/t"
    assert util.urlresolve("tag://h/t") == "http://h:8989/ddfs/tag/t"
    assert util.urlresolve("http://a:1/b") == "http://a:1/b"
    with pytest.raises(DiscoError):
        util.urlresolve("/just/a/path")
    with pytest.raises(DiscoError):
        util.assert_url("nohost")


def test_proxy_url_quirk() -> None:
    assert (
        util.proxy_url("http://node:8989/disco/x", proxy="http://p:8999") == "http://p:8999/disco/x"
    )
    assert (
        util.proxy_url("http://node:8989/disco/x", proxy="http://p", meth="PUT", to_master=False)
        == "http://p/proxy/node/PUT/disco/x"
    )
    assert util.proxy_url("http://node.com:8989/x", proxy="http://p") == "http://node.com:8989/x"
    assert (
        util.proxy_url("http://node:8989/.disco/x", proxy="http://p") == "http://node:8989/.disco/x"
    )
    assert util.proxy_url("http://node:8989/x", proxy="") == "http://node:8989/x"


def test_jobname_is_the_component_after_hh() -> None:
    job = "WordCount@6b0:5464e:dc072"
    assert util.jobname("dir://h/disco/h/82/%s/.disco/map-0-1.results" % job) == job
    assert util.jobname("disco://h/disco/h/82/%s/3f/uid/map-0-1" % job) == job
    assert util.jobname("http://h:8989/disco/h/82/%s/x/y" % job) == job
    with pytest.raises(DiscoError, match="Cannot parse jobname from raw://x"):
        util.jobname("raw://x")


def write_index(path, lines, gz=False) -> None:
    data = "".join("%s %s %s\n" % line for line in lines).encode()
    if gz:
        data = gzip.compress(data)
    path.write_bytes(data)


def test_read_index_parse_dir_and_inputexpand(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DISCO_DATA", str(tmp_path))
    job = tmp_path / "h" / "82" / "J"
    (job / ".disco").mkdir(parents=True)
    lines = [(1, "disco://h/disco/h/82/J/b", 20), (0, "disco://h/disco/h/82/J/a", 10)]
    write_index(job / ".disco" / "map-0-1.results", lines)
    write_index(
        job / ".disco" / "map-1-1.results.gz", [(0, "disco://h/disco/h/82/J/c", 5)], gz=True
    )
    dir1 = "dir://h/disco/h/82/J/.disco/map-0-1.results"
    dir2 = "dir://h/disco/h/82/J/.disco/map-1-1.results.gz"
    assert list(util.read_index(dir1)) == [(1, lines[0][1], 20), (0, lines[1][1], 10)]
    assert list(util.read_index([dir2])) == [(0, "disco://h/disco/h/82/J/c", 5)]
    assert util.parse_dir(dir1) == ["disco://h/disco/h/82/J/a", "disco://h/disco/h/82/J/b"]
    assert util.parse_dir(dir1, label=1) == ["disco://h/disco/h/82/J/b"]
    assert util.ispartitioned(dir1) and util.ispartitioned([dir1, dir2]) == 2
    assert not util.ispartitioned(["http://x", dir1]) and not util.ispartitioned([])
    assert util.inputexpand(dir1, label=0) == [("disco://h/disco/h/82/J/a",)]
    assert util.inputexpand(dir1, label=False) == [dir1]
    assert util.inputexpand("http://x/y") == ["http://x/y"]
    assert util.inputlist(["http://a/1", ["http://b/1", "http://b/2"], []]) == [
        "http://a/1",
        ["http://b/1", "http://b/2"],
    ]
    monkeypatch.setenv("DISCO_PORT", "8989")
    assert list(util.deref(["disco://h/disco/x"], resolve=True)) == [["http://h:8989/disco/x"]]


def test_ddfs_helpers() -> None:
    assert istag("tag://x") and istag("input.csv") and not istag("-") and not istag("a/b")
    assert not istag("http://x")
    assert canonizetag("x") == "tag://x" and canonizetag("tag://x") == "tag://x"
    assert tagname("tag://x") == "x" and tagname(["tag://y"]) == "y" and tagname("z") == "z"
    assert DDFS.safe_name("a b/c:d@e-f_g") == "a_b_c:d@e-f_g"
    assert DDFS.blob_name("disco://h/ddfs/vol0/blob/ab/name$5d4-1-2") == "name"


def test_encode_decode_round_trip() -> None:
    raw = b"a\x00b\x01c\x02d\x02\x01\x02"
    assert util.encode(b"\x01\x02\x00") == b"\x01\x01\x02\x02\x02\x01\x02"
    assert util.decode(util.encode(raw)) == raw
    assert b"\x00" not in util.encode(raw)


def test_disk_sort_orders_bytes_keys(tmp_path) -> None:
    class W:
        sent: list = []

        def send(self, kind, message):
            self.sent.append((kind, message))

    pairs = [(b"b", 1), (b"\xfe", "hi\x00"), (b"a", {"x": b"\x00\x01"}), (b"ab", None), (b"A", 2)]
    fname = str(tmp_path / "sort.dl")
    w = W()
    got = list(util.disk_sort(w, pairs, fname, sort_buffer_size="1M"))
    assert got == sorted(pairs, key=lambda kv: kv[0])
    assert [m for _, m in w.sent][0] == "Downloading %s" % fname
    assert w.sent[-1] == ("MSG", "Finished sorting")
    assert list(tmp_path.iterdir()) == []  # sorted in memory: no file left behind


def test_disk_sort_orders_str_keys_by_code_point_and_gives_str_back(tmp_path) -> None:
    keys = ["b", "a", "é", "Z", "ab", "\U0001f600", "\uffff", "", "a b"]
    pairs = [(k, i) for i, k in enumerate(keys)]
    got = list(util.disk_sort(None, pairs, str(tmp_path / "s"), sort_buffer_size="1M"))
    assert got == sorted(pairs)  # Python's str order is code-point order
    assert all(type(k) is str for k, _ in got)


def test_disk_sort_refuses_other_keys_at_the_first_record(tmp_path) -> None:
    read: list = []

    def records():
        for kv in [(5, "x"), (6, "y")]:
            read.append(kv)
            yield kv

    with pytest.raises(ValueError, match="must be bytes or str for external sort.*not int") as e:
        list(util.disk_sort(None, records(), str(tmp_path / "s")))
    assert read == [(5, "x")] and "zero-padded" in str(e.value)
    with pytest.raises(ValueError, match="all bytes or all str: the first key was str, not bytes"):
        list(util.disk_sort(None, [("a", 1), (b"b", 2)], str(tmp_path / "s")))


def test_disk_sort_rejects_bad_keys(tmp_path) -> None:
    with pytest.raises(ValueError, match="Keys must be bytes or str for external sort"):
        list(util.disk_sort(None, [(1, 1)], str(tmp_path / "s")))
    with pytest.raises(ValueError, match="all bytes or all str"):
        list(util.disk_sort(None, [("a", 1), (b"b", 2)], str(tmp_path / "s")))
    with pytest.raises(ValueError, match="all bytes or all str"):
        list(util.disk_sort(None, [(b"a", 1), ("b", 2)], str(tmp_path / "s")))
    with pytest.raises(ValueError):
        list(util.disk_sort(None, [(b"a\xffb", 1)], str(tmp_path / "s")))
    with pytest.raises(ValueError, match="0xFF or 0x00"):
        list(util.disk_sort(None, [("a\x00b", 1)], str(tmp_path / "s")))
    assert not (tmp_path / "s").exists()


def test_disk_sort_gives_str_keys_back_as_str_in_python_order(tmp_path) -> None:
    """Issue 12.4: str keys come back as str, sorted as ``sorted`` sorts them."""
    pairs = [("zebra", 1), ("Été", 2), ("apple", 3), ("été", 4), ("Zoo", 5), ("\U0001f600", 6)]
    got = list(util.disk_sort(None, pairs, str(tmp_path / "s"), sort_buffer_size="1M"))
    assert got == sorted(pairs)
    assert all(isinstance(k, str) for k, _ in got)


def test_unix_sort_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="Invalid sort input file"):
        util.unix_sort(str(tmp_path / "missing"))
    path = tmp_path / "f"
    path.write_bytes(b"x\xff1\x00")
    with pytest.raises(DataError, match="Sorting .* failed"):
        util.unix_sort(str(path), sort_buffer_size="bogus")
