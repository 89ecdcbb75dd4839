"""``HttpNodeStore``: a node's DDFS storage reached over HTTP (the ``NodeStore`` seam).

Each method is one ``POST <base_url>/ddfs/node/<op>`` with a JSON body (the routes of
``disco.ddfs.noderoutes``, served by the node's upload server on ``DDFS_PUT_PORT``),
carrying the cluster's token when one is set.  Answers map back to the errors the DDFS
master expects of a node: ``404`` -> ``FileNotFoundError``, ``409`` -> ``FileExistsError``,
``507`` -> ``NoSpace``, anything else (or no answer) -> ``NodeUnavailable`` (an
``OSError``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp

from disco.auth import HEADER, AuthPolicy
from disco.ddfs.names import Timestamp, disco_url, object_id
from disco.ddfs.node import NoSpace, StoredObject
from disco.ddfs.nodestore import stored_from_json, stored_to_json

# Tag operations wait at most a minute for a node; scans, replication and deletions of a
# GC run may take long (GC has its own progress watchdog).  Seconds of reading an answer
# (``None``: no limit); the ``aiohttp.ClientTimeout`` is built at the first call, so that
# importing this module does not import aiohttp's client (disco.lazy_aiohttp).
SHORT: float | None = 60.0
LONG: float | None = None
T = TypeVar("T")


@functools.cache
def _timeout(sock_read: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=sock_read)


class NodeUnavailable(OSError):
    """The node did not answer, or answered with an error."""


class HttpNodeStore:
    """``NodeStore`` of the node ``host`` whose upload server is at ``base_url``
    (``http://HOST:DDFS_PUT_PORT``); ``auth``: the cluster's token (or its policy)."""

    def __init__(
        self,
        host: str,
        base_url: str,
        auth: AuthPolicy | str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._host = host
        self.base_url = base_url.rstrip("/")
        token = auth.token if isinstance(auth, AuthPolicy) else (auth or "")
        self._headers = {HEADER: token} if token else {}
        self._session = session
        self._own_session = session is None

    @property
    def host(self) -> str:
        return self._host

    def __repr__(self) -> str:
        return "HttpNodeStore(%r, %r)" % (self._host, self.base_url)

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(self, op: str, body: dict[str, Any], sock_read: float | None) -> Any:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        url = "%s/ddfs/node/%s" % (self.base_url, op)
        data = json.dumps(body).encode("utf-8")
        for retry in (True, False):
            try:
                async with self._session.post(
                    url,
                    data=data,
                    headers={**self._headers, "Content-Type": "application/json"},
                    timeout=_timeout(sock_read),
                ) as response:
                    text = await response.text()
                    status = response.status
                break
            except aiohttp.ServerDisconnectedError:
                if retry:  # a kept-alive connection the node closed (e.g. it restarted)
                    continue
                raise NodeUnavailable("node %s: %s: disconnected" % (self._host, op)) from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                reason = type(exc).__name__
                raise NodeUnavailable("node %s: %s: %s" % (self._host, op, reason)) from None
        if status == 200:
            try:
                return json.loads(text)
            except ValueError:
                raise NodeUnavailable("node %s: %s: not JSON" % (self._host, op)) from None
        reason = "node %s: %s: %d %s" % (self._host, op, status, text[:200])
        if status == 404:
            raise FileNotFoundError(reason)
        if status == 409:
            raise FileExistsError(reason)
        if status == 507:
            raise NoSpace(reason)
        raise NodeUnavailable(reason)

    async def _ask(
        self,
        op: str,
        body: dict[str, Any],
        parse: Callable[[Any], T],
        sock_read: float | None = SHORT,
    ) -> T:
        """``op``'s answer through ``parse``; an answer of the wrong shape is a node
        failure (``NodeUnavailable``), not a crash of the caller."""
        answer = await self._call(op, body, sock_read)
        try:
            return parse(answer)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError):
            raise NodeUnavailable("node %s: %s: unexpected answer" % (self._host, op)) from None

    async def disk_usage(self) -> tuple[int, int]:
        return await self._ask("disk_usage", {}, lambda a: (int(a["free"]), int(a["used"])))

    async def find_blob(self, oid: str) -> str | None:
        return await self._ask("find_blob", {"oid": oid}, lambda a: _optional(a["volume"]))

    async def replicate_blob(self, oid: str, source_url: str) -> str:
        body = {"oid": oid, "url": source_url}
        return await self._ask("replicate_blob", body, lambda a: _text(a["url"]), LONG)

    async def write_tag(self, name: str, ts: Timestamp, data: bytes) -> str:
        body = {"name": name, "ts": str(ts), "data": data.decode("utf-8")}
        return await self._ask("write_tag", body, lambda a: _text(a["handle"]))

    async def commit_tag(self, handle: str) -> str:
        return await self._ask("commit_tag", {"handle": handle}, lambda a: _text(a["url"]))

    async def abort_tag(self, handle: str) -> None:
        await self._call("abort_tag", {"handle": handle}, SHORT)

    async def read_tag(self, name: str, ts: Timestamp, volume: str) -> bytes:
        body = {"name": name, "ts": str(ts), "volume": volume}
        return await self._ask("read_tag", body, lambda a: _text(a["data"]).encode("utf-8"))

    async def tag_version(self, name: str) -> tuple[Timestamp, str] | None:
        def parse(answer: Any) -> tuple[Timestamp, str] | None:
            if answer is None:
                return None
            return Timestamp.parse(answer["ts"]), _text(answer["volume"])

        return await self._ask("tag_version", {"name": name}, parse)

    async def has_tag_version(self, name: str, ts: Timestamp) -> bool:
        body = {"name": name, "ts": str(ts)}
        return await self._ask("has_tag_version", body, lambda a: a["present"] is True)

    async def tag_names(self) -> list[str]:
        return await self._ask("tag_names", {}, lambda a: [_text(n) for n in _list(a)])

    def tag_url(self, name: str, ts: Timestamp, volume: str) -> str:
        return disco_url(self._host, volume, "tag", object_id(name, ts))

    async def rescan_tags(self) -> None:
        await self._call("rescan_tags", {}, LONG)

    async def scan(self, partial_expires: float, now: float) -> list[StoredObject]:
        body = {"partial_expires": partial_expires, "now": now}
        return await self._ask("scan", body, _objects, LONG)

    async def objects(self, kind: str) -> list[StoredObject]:
        return await self._ask("objects", {"kind": kind}, _objects, LONG)

    async def delete(self, obj: StoredObject, paranoid: bool = False) -> None:
        body = {"object": stored_to_json(obj), "paranoid": paranoid}
        await self._call("delete", body, LONG)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("a string expected")
    return value


def _optional(value: Any) -> str | None:
    return None if value is None else _text(value)


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("a list expected")
    return value


def _objects(answer: Any) -> list[StoredObject]:
    return [stored_from_json(o) for o in _list(answer)]
