"""What the DDFS master asks of a node's storage: the ``NodeStore`` seam (ddfs.md 0, 1.3-1.7, 5).

The DDFS master (tags, ``new_blob`` placement, GC, re-replication, the metrics) never
touches a node's files: it awaits the methods of a ``NodeStore``, which
``Backend.ddfs_node(host)`` hands out.  Two implementations:

* ``LocalNodeStore``: a ``DDFSNode`` in this process (the local backend), each call run in
  a thread;
* ``HttpNodeStore`` (``disco.ddfs.nodehttp``): the same calls as JSON requests to the
  ``/ddfs/node/...`` routes of the node's upload server on ``DDFS_PUT_PORT``
  (``disco.ddfs.noderoutes``), so the nodes can be other machines.

Errors are ``OSError``s (``FileNotFoundError``, ``FileExistsError``, ``NoSpace``, or a
plain ``OSError`` for a node that does not answer); callers treat them as a failed node.
A tag version is staged (``write_tag``) under an opaque handle that ``commit_tag`` or
``abort_tag`` takes back; re-replication hands the target node the canonical ``disco://``
URL of an existing copy, and the target fetches it from that node's data server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from disco.ddfs.blobstream import fetch_blob, source_http_url
from disco.ddfs.names import InvalidName, Timestamp, parse_ddfs_url, parse_object_id
from disco.ddfs.node import KINDS, DDFSNode, StoredObject


class NodeStore(Protocol):
    """One node's DDFS storage as the master sees it; every I/O method is async."""

    @property
    def host(self) -> str: ...

    async def disk_usage(self) -> tuple[int, int]:
        """(free KiB, used KiB) of the node's volumes."""
        ...

    async def find_blob(self, oid: str) -> str | None:
        """The volume holding blob ``oid``, or ``None``."""
        ...

    async def replicate_blob(self, oid: str, source_url: str) -> str:
        """Copy blob ``oid`` from ``source_url`` (the canonical ``disco://`` URL of a copy
        on another node) onto this node, same id; the new copy's canonical URL."""
        ...

    async def write_tag(self, name: str, ts: Timestamp, data: bytes) -> str:
        """Stage a tag version; an opaque handle for ``commit_tag``/``abort_tag``."""
        ...

    async def commit_tag(self, handle: str) -> str:
        """Rename a staged version into place; its canonical URL."""
        ...

    async def abort_tag(self, handle: str) -> None: ...

    async def read_tag(self, name: str, ts: Timestamp, volume: str) -> bytes:
        """The stored document of a tag version (``FileNotFoundError`` if gone)."""
        ...

    async def tag_version(self, name: str) -> tuple[Timestamp, str] | None:
        """(newest TS, volume) of the tag on this node, or ``None``."""
        ...

    async def has_tag_version(self, name: str, ts: Timestamp) -> bool:
        """Whether version ``ts`` is this node's newest of the tag and its file exists."""
        ...

    async def tag_names(self) -> list[str]: ...

    def tag_url(self, name: str, ts: Timestamp, volume: str) -> str:
        """The canonical URL of a tag version here (no I/O)."""
        ...

    async def rescan_tags(self) -> None:
        """Rebuild the node's tag index from its files (after GC)."""
        ...

    async def scan(self, partial_expires: float, now: float) -> list[StoredObject]:
        """Every blob and tag file; stale staging files are deleted on the way (GC1)."""
        ...

    async def objects(self, kind: str) -> list[StoredObject]:
        """Every committed ``blob`` or ``tag`` file (no side effects)."""
        ...

    async def delete(self, obj: StoredObject, paranoid: bool = False) -> None: ...


# -- the wire form of a stored object (shared by nodehttp and noderoutes) -------------------
def stored_to_json(obj: StoredObject) -> dict[str, Any]:
    return {"kind": obj.kind, "oid": obj.oid, "volume": obj.volume, "size": obj.size}


def stored_from_json(value: Any) -> StoredObject:
    """A ``StoredObject`` from its JSON form; ``InvalidName`` when it is not one."""
    if not isinstance(value, dict):
        raise InvalidName("object expected")
    kind, oid, volume, size = (value.get(k) for k in ("kind", "oid", "volume", "size"))
    if kind not in KINDS or not isinstance(oid, str) or not isinstance(volume, str):
        raise InvalidName("invalid stored object")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidName("invalid stored object size")
    if not volume.startswith("vol") or "/" in volume or volume in ("vol.", "vol.."):
        raise InvalidName("invalid volume")
    ts = parse_object_id(oid, internal=kind == "tag").ts
    return StoredObject(kind, oid, volume, size, ts)


class LocalNodeStore:
    """``NodeStore`` of a ``DDFSNode`` in this process (blocking calls run in threads).

    ``peer(host)`` finds the in-process node of another host: a replica to copy from such a
    node is copied as a file; from any other host it is fetched from that host's data
    server on ``disco_port`` with ``auth_token``.
    """

    def __init__(
        self,
        node: DDFSNode,
        *,
        peer: Callable[[str], DDFSNode | None] | None = None,
        disco_port: int | None = None,
        auth_token: str = "",
    ) -> None:
        self.node = node
        self._peer = peer
        self._disco_port = disco_port
        self._auth_token = auth_token

    @property
    def host(self) -> str:
        return self.node.host

    async def disk_usage(self) -> tuple[int, int]:
        return await asyncio.to_thread(self.node.disk_usage)

    async def find_blob(self, oid: str) -> str | None:
        return await asyncio.to_thread(self.node.find_blob, oid)

    async def replicate_blob(self, oid: str, source_url: str) -> str:
        source = parse_ddfs_url(source_url)
        if source is None or source.kind != "blob" or source.oid != oid:
            raise InvalidName("not a URL of blob %s" % oid)
        other = self._peer(source.host) if self._peer is not None else None
        if other is not None:
            path = other.path(source.volume, "blob", oid)
            return await asyncio.to_thread(self.node.store_blob, oid, path)
        if self._disco_port is None:
            raise OSError("no data server port to fetch %s from %s" % (oid, source.host))
        from disco.auth import HEADER

        headers = {HEADER: self._auth_token} if self._auth_token else {}
        url = source_http_url(source_url, self._disco_port)
        return await fetch_blob(self.node, oid, url, headers)

    async def write_tag(self, name: str, ts: Timestamp, data: bytes) -> str:
        return await asyncio.to_thread(self.node.write_tag, name, ts, data)

    async def commit_tag(self, handle: str) -> str:
        return await asyncio.to_thread(self.node.commit_tag, handle)

    async def abort_tag(self, handle: str) -> None:
        await asyncio.to_thread(self.node.abort_tag, handle)

    async def read_tag(self, name: str, ts: Timestamp, volume: str) -> bytes:
        return await asyncio.to_thread(self.node.read_tag, name, ts, volume)

    async def tag_version(self, name: str) -> tuple[Timestamp, str] | None:
        return self.node.tag_version(name)

    async def has_tag_version(self, name: str, ts: Timestamp) -> bool:
        return await asyncio.to_thread(self.node.has_tag_version, name, ts)

    async def tag_names(self) -> list[str]:
        return self.node.tag_names()

    def tag_url(self, name: str, ts: Timestamp, volume: str) -> str:
        return self.node.tag_url(name, ts, volume)

    async def rescan_tags(self) -> None:
        await asyncio.to_thread(self.node.rescan_tags)

    async def scan(self, partial_expires: float, now: float) -> list[StoredObject]:
        return await asyncio.to_thread(self.node.scan, partial_expires, now)

    async def objects(self, kind: str) -> list[StoredObject]:
        return await asyncio.to_thread(self.node.objects, kind)

    async def delete(self, obj: StoredObject, paranoid: bool = False) -> None:
        await asyncio.to_thread(self.node.delete, obj, paranoid)
