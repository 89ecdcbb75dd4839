"""The node routes of the NodeStore seam: ``POST /ddfs/node/<op>`` on ``DDFS_PUT_PORT``.

A real master with three simulated nodes and a cluster token; requests go straight to
the nodes' upload servers (urllib for the raw wire, ``HttpNodeStore`` for the client).
Every route needs the token; bad names, paths, handles and bodies get a 4xx and change no
file; Hypothesis bodies never get a 5xx.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disco.auth import HEADER
from disco.ddfs.names import Timestamp, hash_dir, parse_ddfs_url
from disco.ddfs.nodehttp import HttpNodeStore
from disco.embedded import EmbeddedMaster
from tests.conftest import _assert_no_leaked_workers, child_pids
from tests.ddfs.conftest import NODES3
from tests.fuzzing import FUZZ, json_values

TOKEN = "node-secret"
OPS = [
    "disk_usage",
    "find_blob",
    "replicate_blob",
    "write_tag",
    "commit_tag",
    "abort_tag",
    "read_tag",
    "tag_version",
    "has_tag_version",
    "tag_names",
    "rescan_tags",
    "scan",
    "objects",
    "delete",
]


class Node:
    """The upload server of one node of ``master``."""

    def __init__(self, master: EmbeddedMaster, host: str) -> None:
        self.master = master
        self.host = host
        backend = master.server.backend
        self.root = backend.ddfs_root(host)
        self.base = "http://%s:%d" % (backend._put_addrs[host], master.server.config.put_port)

    def post(
        self, op: str, body: Any = None, *, token: str | None = TOKEN, raw: bytes | None = None
    ) -> tuple[int, str]:
        data = raw if raw is not None else json.dumps({} if body is None else body).encode()
        req = urllib.request.Request(self.base + "/ddfs/node/" + op, data=data, method="POST")
        if token is not None:
            req.add_header(HEADER, token)
        return _send(req)

    def get(self, op: str) -> tuple[int, str]:
        req = urllib.request.Request(self.base + "/ddfs/node/" + op, headers={HEADER: TOKEN})
        return _send(req)

    def push(self, name: str, data: bytes) -> str:
        """A blob stored on this node only (PUT to its upload server); its URL."""
        ts = Timestamp.from_time(1.7e9 + len(name))
        req = urllib.request.Request(
            "%s/ddfs/%s$%s" % (self.base, name, ts), data=data, method="PUT"
        )
        req.add_header(HEADER, TOKEN)
        status, text = _send(req)
        assert status == 201, text
        return str(json.loads(text))

    def store(self) -> HttpNodeStore:
        return HttpNodeStore(self.host, self.base, TOKEN)


def _send(req: urllib.request.Request) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(req, timeout=30) as f:
            return f.status, f.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def snapshot(root: str) -> dict[str, tuple[int, int]]:
    """Every file below ``root``: (size, mode)."""
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            st_ = os.lstat(path)
            found[os.path.relpath(path, root)] = (st_.st_size, st_.st_mode)
    return found


@pytest.fixture(scope="module")
def secured(tmp_path_factory) -> Iterator[EmbeddedMaster]:
    before = child_pids()
    root = tmp_path_factory.mktemp("noderoutes") / "disco"
    settings = {"DISCO_AUTH_TOKEN": TOKEN, "DDFS_NODES_OVER_HTTP": "1"}
    with EmbeddedMaster(root=root, nodes=NODES3, settings=settings) as m:
        yield m
    _assert_no_leaked_workers(before)


@pytest.fixture
def node2(secured) -> Node:
    return Node(secured, "127.0.0.2")


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_every_route_needs_the_token(node2: Node) -> None:
    node2.push("guarded", b"guarded")
    before = snapshot(node2.root)
    handle_body = {"handle": "vol0/t$1-2-3"}
    for op in OPS:
        for token in (None, "wrong", ""):
            status, text = node2.post(op, handle_body, token=token)
            assert status == 401, (op, token, status, text)
            assert HEADER in text
    assert node2.post("nosuchop", {}, token=None)[0] == 401
    assert snapshot(node2.root) == before
    assert node2.post("disk_usage", {})[0] == 200


def test_routes_do_what_the_master_asks(secured, node2: Node) -> None:
    node3 = Node(secured, "127.0.0.3")
    source = node3.push("copyme", b"a blob to replicate")
    oid = parse_ddfs_url(source).oid

    async def session() -> None:
        store = node2.store()
        try:
            free, used = await store.disk_usage()
            assert free > 0 and used > 0
            assert await store.find_blob(oid) is None
            url = await store.replicate_blob(oid, source)  # fetched from 127.0.0.3's data server
            assert parse_ddfs_url(url).host == "127.0.0.2"
            assert await store.find_blob(oid) == "vol0"
            with pytest.raises(FileExistsError):
                await store.replicate_blob(oid, source)
            ts = Timestamp(1, 2, 3)
            handle = await store.write_tag("t:routes", ts, b'{"doc":1}')
            assert "/" in handle and not handle.startswith("/")
            assert await store.tag_version("t:routes") is None
            version_url = await store.commit_tag(handle)
            assert version_url == store.tag_url("t:routes", ts, "vol0")
            assert await store.tag_version("t:routes") == (ts, "vol0")
            assert await store.has_tag_version("t:routes", ts)
            assert not await store.has_tag_version("t:routes", Timestamp(1, 2, 4))
            assert await store.read_tag("t:routes", ts, "vol0") == b'{"doc":1}'
            assert "t:routes" in await store.tag_names()
            dropped = await store.write_tag("t:routes", Timestamp(1, 2, 5), b"{}")
            await store.abort_tag(dropped)
            with pytest.raises(FileNotFoundError):
                await store.commit_tag(dropped)
            blobs = await store.objects("blob")
            assert oid in [o.oid for o in blobs] and all(o.kind == "blob" for o in blobs)
            scanned = await store.scan(3600.0, 1.7e9)
            assert {(o.kind, o.oid) for o in scanned} >= {("blob", oid), ("tag", "t:routes$1-2-3")}
            tag = next(o for o in scanned if o.kind == "tag")
            await store.delete(tag)
            await store.rescan_tags()
            assert await store.tag_version("t:routes") is None
            with pytest.raises(FileNotFoundError):
                await store.read_tag("t:routes", ts, "vol0")
        finally:
            await store.close()

    run(session())
    status, text = node2.get("disk_usage")
    assert status == 405


BAD = [
    ("find_blob", {"oid": "../../etc/passwd"}),
    ("find_blob", {"oid": "x$1-2-3/../y"}),
    ("find_blob", {}),
    ("find_blob", {"oid": 7}),
    ("replicate_blob", {"oid": "b$1-2-3", "url": "file:///etc/passwd"}),
    ("replicate_blob", {"oid": "b$1-2-3", "url": "http://127.0.0.3:1/ddfs/vol0/blob/aa/b$1-2-3"}),
    ("replicate_blob", {"oid": "b$1-2-3", "url": "disco://127.0.0.3/ddfs/vol0/blob/00/c$1-2-3"}),
    ("replicate_blob", {"oid": "b$1-2-3", "url": "disco://../ddfs/vol0/blob/4b/b$1-2-3"}),
    ("replicate_blob", {"oid": "../b$1-2-3", "url": "disco://h/ddfs/vol0/blob/00/x"}),
    ("write_tag", {"name": "../t", "ts": "1-2-3", "data": "{}"}),
    ("write_tag", {"name": "t/x", "ts": "1-2-3", "data": "{}"}),
    ("write_tag", {"name": "t", "ts": "../1-2-3", "data": "{}"}),
    ("write_tag", {"name": "t", "ts": "1-2-3", "data": 5}),
    ("write_tag", {"name": "t", "ts": "1-2-3", "data": "\ud800"}),
    ("write_tag", {"name": "t" * 400, "ts": "1-2-3", "data": "{}"}),
    ("commit_tag", {"handle": "../../../etc/passwd"}),
    ("commit_tag", {"handle": "vol0/../../x$1-2-3"}),
    ("commit_tag", {"handle": "/etc/t$1-2-3"}),
    ("commit_tag", {"handle": "vol9/t$1-2-3"}),
    ("commit_tag", {"handle": ["vol0", "t$1-2-3"]}),
    ("abort_tag", {"handle": "vol0/t$1-2-3/../../../x$1-2-3"}),
    ("abort_tag", {"handle": "."}),
    ("read_tag", {"name": "t", "ts": "1-2-3", "volume": ".."}),
    ("read_tag", {"name": "t", "ts": "1-2-3", "volume": "../127.0.0.3/vol0"}),
    ("read_tag", {"name": "../x", "ts": "1-2-3", "volume": "vol0"}),
    ("tag_version", {"name": ""}),
    ("tag_version", {"name": None}),
    ("has_tag_version", {"name": "t", "ts": "x-y-z"}),
    ("scan", {"partial_expires": -1, "now": 0}),
    ("scan", {"partial_expires": "0", "now": 0}),
    ("scan", {"partial_expires": True, "now": 0}),
    ("scan", {"partial_expires": 10**400, "now": 0}),
    ("objects", {"kind": "../blob"}),
    ("objects", {"kind": None}),
    ("delete", {"object": {"kind": "blob", "oid": "guarded$1-2-3", "volume": "..", "size": 0}}),
    ("delete", {"object": {"kind": "blob", "oid": "../../x", "volume": "vol0", "size": 0}}),
    ("delete", {"object": {"kind": "dir", "oid": "x$1-2-3", "volume": "vol0", "size": 0}}),
    ("delete", {"object": {"kind": "blob", "oid": "x$1-2-3", "volume": "vol0", "size": -1}}),
    ("delete", {"object": {"kind": "blob", "oid": "x$1-2-3", "volume": "vol0/..", "size": 1}}),
    ("delete", {"object": "vol0/blob/x"}),
    (
        "delete",
        {
            "object": {"kind": "tag", "oid": "t$1-2-3", "volume": "vol0", "size": 1},
            "paranoid": "yes",
        },
    ),
]


def test_bad_input_gets_4xx_and_changes_nothing(node2: Node) -> None:
    url = node2.push("guarded2", b"keep me")
    before = snapshot(node2.root)
    others = {h: snapshot(node2.master.server.backend.ddfs_root(h)) for h in ("127.0.0.3",)}
    for op, body in BAD:
        status, text = node2.post(op, body)
        assert status == 400, (op, body, status, text)
        assert node2.root not in text
    for raw in (b"not json", b"[1, 2]", b'"x"', b"\xff\xfe", b"{" * 5000):
        status, _ = node2.post("find_blob", raw=raw)
        assert status == 400
    assert node2.post("nosuchop", {})[0] == 404
    assert snapshot(node2.root) == before
    assert others == {h: snapshot(node2.master.server.backend.ddfs_root(h)) for h in others}
    assert node2.master.server.backend.local_ddfs_node("127.0.0.2").find_blob(
        parse_ddfs_url(url).oid
    )


def test_missing_things_are_404_and_409(node2: Node) -> None:
    assert node2.post("read_tag", {"name": "nope", "ts": "1-2-3", "volume": "vol0"})[0] == 404
    assert node2.post("commit_tag", {"handle": "vol0/nope$1-2-3"})[0] == 404
    assert node2.post("abort_tag", {"handle": "vol0/nope$1-2-3"}) == (200, "{}")
    assert node2.post("tag_version", {"name": "nope"}) == (200, "null")
    gone = {"kind": "tag", "oid": "nope$1-2-3", "volume": "vol0", "size": 1}
    assert node2.post("delete", {"object": gone}) == (200, "{}")
    assert node2.post("delete", {"object": gone, "paranoid": True})[0] == 404
    missing = "disco://127.0.0.3/ddfs/vol0/blob/%s/gone$1-2-3"
    status, text = node2.post(
        "replicate_blob", {"oid": "gone$1-2-3", "url": missing % hash_dir("gone$1-2-3")}
    )
    assert status == 424 and "404" in text


FIELDS = ["oid", "url", "name", "ts", "data", "handle", "volume", "kind", "object"]
FIELDS += ["partial_expires", "now", "paranoid"]
plausible = st.sampled_from(
    [
        "vol0",
        "blob",
        "tag",
        "1-2-3",
        "x$1-2-3",
        "vol0/x$1-2-3",
        "vol0/../x$1-2-3",
        "disco://127.0.0.3/ddfs/vol0/blob/00/x$1-2-3",
        "disco://no.such.host.invalid/ddfs/vol0/blob/00/x$1-2-3",
        "+deleted",
        {"kind": "blob", "oid": "x$1-2-3", "volume": "vol0", "size": 1},
        0,
        1e308,
        -1,
    ]
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), plausible | json_values)


@FUZZ
@given(op=st.sampled_from([*OPS, "x", "..", "%2e%2e"]), body=bodies | json_values)
def test_fuzzed_bodies_never_get_a_5xx(node2: Node, op: str, body: Any) -> None:
    try:
        raw = json.dumps(body).encode("utf-8")
    except UnicodeEncodeError:
        raw = json.dumps(body, ensure_ascii=True).encode("ascii")
    status, text = node2.post(op, raw=raw)
    assert status < 500, (op, body, status, text)
    assert node2.root not in text


def test_http_node_store_turns_odd_answers_into_node_failures() -> None:
    """A node answering 200 with the wrong shape, or a 5xx, or nothing at all, is a failed
    node (``OSError``) for the DDFS master, never a crash."""
    from aiohttp import web

    from disco.ddfs.node import StoredObject
    from disco.ddfs.nodehttp import NodeUnavailable

    answer = ["{}"]

    async def odd(request: web.Request) -> web.Response:
        return web.Response(text=answer[0], content_type="application/json")

    async def session() -> None:
        app = web.Application()
        app.router.add_post("/ddfs/node/{op}", odd)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        store = HttpNodeStore("odd", "http://127.0.0.1:%d" % port, TOKEN)
        ts = Timestamp(1, 2, 3)
        obj = StoredObject("blob", "x$1-2-3", "vol0", 1, ts)
        for answer[0] in ('{"weird": 1}', "[1, 2]", '"x"', "not json", "[[]]", '{"ts": 5}'):
            await each_call_fails(store, ts)
        answer[0] = "{}"
        await store.delete(obj)  # answers that carry nothing are not parsed
        await store.close()
        await runner.cleanup()
        nobody = HttpNodeStore("gone", "http://127.0.0.1:%d" % port)
        try:
            with pytest.raises(OSError):
                await nobody.disk_usage()
        finally:
            await nobody.close()

    async def each_call_fails(store: HttpNodeStore, ts: Timestamp) -> None:
        calls = [
            store.disk_usage(),
            store.find_blob("x$1-2-3"),
            store.replicate_blob("x$1-2-3", "disco://h/ddfs/vol0/blob/00/x$1-2-3"),
            store.write_tag("t", ts, b"{}"),
            store.commit_tag("vol0/t$1-2-3"),
            store.read_tag("t", ts, "vol0"),
            store.tag_version("t"),
            store.has_tag_version("t", ts),
            store.tag_names(),
            store.scan(1.0, 2.0),
            store.objects("blob"),
        ]
        for call in calls:
            with pytest.raises(NodeUnavailable):
                await call

    run(session())
