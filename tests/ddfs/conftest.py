"""DDFS test fixtures: real masters with local nodes, and a plain-HTTP client.

``ddfs``: one node (``localhost``).  ``ddfs3``: three nodes (localhost, 127.0.0.2,
127.0.0.3) with ``DDFS_BLOB_REPLICAS = DDFS_TAG_REPLICAS = 2``.  Both run twice
(``node_access``): the DDFS master reaching the nodes' storage in process
(``LocalNodeStore``) and over HTTP (``HttpNodeStore`` to the nodes' ``/ddfs/node/``
routes, ``DDFS_NODES_OVER_HTTP``), as it reaches nodes on other machines.  ``HTTP``
speaks the wire format of ddfs.md 2 with urllib (no DDFS client library involved).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from disco.embedded import EmbeddedMaster
from tests.conftest import _assert_no_leaked_workers, child_pids

NODES3 = [("localhost", 1), ("127.0.0.2", 1), ("127.0.0.3", 1)]
# the keys of a stored tag version, in order (ddfs.md 1.5)
STORED_KEYS = ["version", "id", "last-modified", "read-token", "write-token", "urls", "user-data"]


class Answer:
    def __init__(self, status: int, body: bytes, headers: Any) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def __repr__(self) -> str:
        return "Answer(%d, %r)" % (self.status, self.body[:200])


class HTTP:
    """Requests to a master (paths) or to any URL (``disco://`` resolved to DISCO_PORT)."""

    def __init__(self, master: EmbeddedMaster) -> None:
        self.master = master
        self.url = master.url
        self.port = master.server.port

    def resolve(self, url: str) -> str:
        if url.startswith("/"):
            return self.url + url
        if url.startswith("disco://"):
            host, _, path = url[len("disco://") :].partition("/")
            return "http://%s:%d/%s" % (host, self.port, path)
        return url

    def request(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(self.resolve(url), data=data, method=method)
        for key, value in (headers or {}).items():
            req.add_header(key, value)
        if token is not None:
            auth = base64.b64encode(("token:" + token).encode()).decode()
            req.add_header("Authorization", "Basic " + auth)
        try:
            with urllib.request.urlopen(req, timeout=30) as f:
                return Answer(f.status, f.read(), f.headers)
        except urllib.error.HTTPError as e:
            return Answer(e.code, e.read(), e.headers)

    def ok(self, url: str, method: str = "GET", body: Any = None, **kw: Any) -> Any:
        answer = self.request(url, method, body, **kw)
        assert 200 <= answer.status < 300, answer
        return answer.json if answer.body else None

    # -- DDFS operations over plain HTTP --------------------------------------------------
    def push(self, prefix: str, data: bytes, replicas: int | None = None) -> list[str]:
        """new_blob + PUT to every target; the replica list."""
        query = "" if replicas is None else "?replicas=%d" % replicas
        targets = self.ok("/ddfs/new_blob/%s%s" % (prefix, query))
        return [self.ok(t, "PUT", raw=data) for t in targets]

    def tag(self, name: str, urls: list[list[str]], query: str = "", **kw: Any) -> Any:
        return self.ok("/ddfs/tag/%s%s" % (name, query), "POST", urls, **kw)

    def get(self, name: str, **kw: Any) -> Any:
        return self.ok("/ddfs/tag/%s" % name, **kw)


NODE_ACCESS = ["local", "http"]


def access_settings(access: str) -> dict[str, str]:
    """The settings that make the DDFS master reach its nodes ``access``-wise."""
    return {"DDFS_NODES_OVER_HTTP": "1"} if access == "http" else {}


@pytest.fixture(params=NODE_ACCESS)
def node_access(request) -> str:
    """``"local"``: node storage in process; ``"http"``: through the nodes' HTTP routes."""
    return str(request.param)


@pytest.fixture
def ddfs(tmp_path, node_access: str) -> Iterator[HTTP]:
    before = child_pids()
    settings = {"DDFS_DELAYED_FLUSH": "0.2", **access_settings(node_access)}
    with EmbeddedMaster(root=tmp_path / "disco", settings=settings) as m:
        yield HTTP(m)
    _assert_no_leaked_workers(before)


def three_nodes(tmp_path, access: str = "local", **settings: str) -> EmbeddedMaster:
    base = {"DDFS_BLOB_REPLICAS": "2", "DDFS_TAG_REPLICAS": "2", "DDFS_DELAYED_FLUSH": "0.2"}
    base.update(access_settings(access))
    base.update(settings)
    return EmbeddedMaster(root=tmp_path / "disco", nodes=NODES3, settings=base)


@pytest.fixture
def ddfs3(tmp_path, node_access: str) -> Iterator[HTTP]:
    before = child_pids()
    with three_nodes(tmp_path, node_access) as m:
        yield HTTP(m)
    _assert_no_leaked_workers(before)


def run_gc(http: HTTP, timeout: float = 30.0) -> None:
    """``gc_start``, then wait until ``gc_status`` is ``""`` (5.7)."""
    from tests.conftest import poll_for

    assert http.ok("/ddfs/ctrl/gc_start") == "GC has started"
    poll_for(lambda: http.ok("/ddfs/ctrl/gc_status") == "", timeout, "GC to finish")


GC_NOW = {"DDFS_GC_INITIAL_WAIT": "0", "DDFS_GC_DELETE_PAUSE": "0"}


def files_below(root: str, kind: str) -> list[str]:
    """Names of the files (staging and trash ones too) of ``root/vol0/<kind>``, sorted."""
    import os

    found: list[str] = []
    for _dir, _subdirs, files in os.walk(os.path.join(root, "vol0", kind)):
        found.extend(files)
    return sorted(found)
