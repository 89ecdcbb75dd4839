"""The master's tag service: every tag operation, serialized per tag (ddfs.md 1.7-1.11).

``TagStore`` runs each operation on a tag under that tag's lock, so operations on one tag
are strictly ordered and different tags proceed in parallel.  Tags live on the nodes as
version files (``NodeStore.write_tag``/``commit_tag``): every change writes a brand-new
version to ``Kt`` writable nodes, so a restarted master finds every tag and version again
by asking the nodes.  Loaded tags are cached (all writes pass through here); the cache is
dropped when the node set changes and after GC.

Deletion appends ``tag://NAME`` to the internal tag ``+deleted``; a listed tag behaves as
missing and is re-created empty.  Delayed appends (``delayed=1``) are authorized at once,
buffered, and merged into one version ``delayed_flush`` seconds later or as soon as any
other operation reaches the tag.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import field
from typing import Any, TypeVar

from disco.ddfs import errors
from disco.ddfs.cluster import NodeView, node_spaces, writable_hosts
from disco.ddfs.config import DDFSConfig
from disco.ddfs.errors import DDFSError
from disco.ddfs.names import DELETED_TAG, Timestamp, TimestampClock, entry_name
from disco.ddfs.nodestore import NodeStore
from disco.ddfs.placement import choose_nodes
from disco.ddfs.tagdoc import (
    INTERNAL,
    READ_TOKEN,
    URLS,
    WRITE_TOKEN,
    CorruptTag,
    TagDoc,
    Token,
    append_urls,
    can_write,
    dedup_new,
    empty_tag,
    read_privilege,
)
from disco.lazydataclass import lazy_dataclass

logger = logging.getLogger(__name__)

T = TypeVar("T")


CACHE_IDLE = 10 * 60 * 60.0  # an idle loaded tag is dropped after 10 hours (1.7)
CACHE_MISSING = 1.0  # a missing tag is looked up again after 1 second
CACHE_SWEEP = 60.0


@lazy_dataclass()
class _Cached:
    doc: TagDoc | None
    locations: list[str] = field(default_factory=list)
    used: float = field(default_factory=time.monotonic)


@lazy_dataclass()
class _Delayed:
    urls: list[list[str]]
    update: bool
    future: asyncio.Future[list[str]]


class TagStore:
    """All tag operations of the master (the per-tag actors of 0.5)."""

    def __init__(
        self, config: DDFSConfig, view: NodeView, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.view = view
        self.clock = clock
        self._ts = TimestampClock()
        self._cache: dict[str, _Cached] = {}
        self._swept = time.monotonic()
        self._hosts: tuple[str, ...] = ()
        self._locks: dict[str, asyncio.Lock] = {}
        self._delayed: dict[str, list[_Delayed]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._deleted: set[str] | None = None

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for batch in self._delayed.values():
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(errors.internal("shutdown"))

    # -- serialization --------------------------------------------------------------------
    def _lock(self, name: str) -> asyncio.Lock:
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def _serialized(
        self, name: str, fn: Callable[[], Awaitable[T]], *, flush: bool = True
    ) -> T:
        """Run ``fn`` under the tag's lock, after merging buffered delayed appends (any
        operation but another delayed append flushes them, 1.9)."""
        async with self._lock(name):
            if flush:
                await self._flush_delayed(name)
            return await fn()

    def forget_cache(self) -> None:
        self._cache.clear()
        self._deleted = None

    # -- reading --------------------------------------------------------------------------
    def _check_nodes(self) -> list[str]:
        hosts = tuple(self.view.hosts())
        if hosts != self._hosts:
            self._hosts = hosts
            self.forget_cache()
        down = [h for h in hosts if self.view.node(h) is None]
        if hosts and len(down) >= self.config.tag_min_replicas:
            logger.warning("DDFS nodes down: %s", ", ".join(down))
            raise errors.internal("too_many_failed_nodes")
        return list(hosts)

    async def _ask_nodes(
        self, hosts: list[str], ask: Callable[[NodeStore], Awaitable[T]]
    ) -> list[tuple[NodeStore, T]]:
        """``ask`` every up node of ``hosts`` at once; the answers.  Nodes that fail count as
        down: ``too_many_failed_nodes`` when they and the down ones reach
        ``DDFS_TAG_MIN_REPLICAS`` (a read could miss the newest version)."""
        nodes = [n for h in hosts if (n := self.view.node(h)) is not None]
        answers = await asyncio.gather(*(ask(n) for n in nodes), return_exceptions=True)
        found, failed = [], len(hosts) - len(nodes)
        for node, answer in zip(nodes, answers, strict=True):
            if isinstance(answer, OSError):
                logger.warning("DDFS node %s does not answer: %s", node.host, answer)
                failed += 1
            elif isinstance(answer, BaseException):
                raise answer
            else:
                found.append((node, answer))
        if hosts and failed >= self.config.tag_min_replicas:
            raise errors.internal("too_many_failed_nodes")
        return found

    async def _load(self, name: str) -> _Cached:
        """The newest version of ``name`` over all nodes (cached)."""
        hosts = self._check_nodes()
        now = time.monotonic()
        if now - self._swept > CACHE_SWEEP:
            self._swept = now
            self._cache = {n: c for n, c in self._cache.items() if now - c.used < CACHE_IDLE}
        cached = self._cache.get(name)
        if cached is not None and (cached.doc is not None or now - cached.used < CACHE_MISSING):
            cached.used = now
            return cached
        versions = []
        answers = await self._ask_nodes(hosts, lambda node: node.tag_version(name))
        for node, found in answers:
            if found is not None:
                versions.append((found[0], node, found[1]))
        if not versions:
            cached = _Cached(None)
        else:
            newest = max(v[0] for v in versions)
            replicas = [(node, vol) for ts, node, vol in versions if ts == newest]
            cached = await self._read_replicas(name, newest, replicas)
        self._cache[name] = cached
        return cached

    async def _read_replicas(self, name: str, ts: Timestamp, replicas: list[Any]) -> _Cached:
        random.shuffle(replicas)
        last: Exception | None = None
        for node, vol in replicas:
            try:
                data = await node.read_tag(name, ts, vol)
                doc = TagDoc.decode(data)
            except (OSError, CorruptTag) as exc:
                logger.warning("tag %s on %s unreadable: %s", name, node.host, exc)
                last = exc
                continue
            return _Cached(doc, [n.tag_url(name, ts, v) for n, v in replicas])
        raise errors.internal("tag %s unreadable (%s)" % (name, last))

    async def deleted_names(self) -> set[str]:
        if self._deleted is None:
            doc = (await self._load(DELETED_TAG)).doc
            self._deleted = _tag_names(doc.urls if doc else [])
        return self._deleted

    async def _current(self, name: str) -> _Cached:
        """The tag, with ``doc=None`` when it is missing or deleted."""
        cached = await self._load(name)
        if cached.doc is not None and name != DELETED_TAG and name in await self.deleted_names():
            return _Cached(None)
        return cached

    # -- writing (1.7) --------------------------------------------------------------------
    async def _write(self, doc: TagDoc) -> list[str]:
        """Commit ``doc`` as the tag's new version on up to ``Kt`` nodes; locations."""
        self._check_nodes()
        hosts = writable_hosts(self.view)
        order = choose_nodes(
            await node_spaces(self.view, hosts),
            len(hosts),
            min_free_kb=self.config.min_free_kb,
            space_aware=self.config.space_aware,
            absolute=self.config.absolute_space,
        )
        data = doc.encode()
        nodes = [n for h in order if (n := self.view.node(h)) is not None]
        staged: list[tuple[NodeStore, str]] = []
        while nodes and len(staged) < self.config.tag_replicas:
            # the next nodes in order, at once; failed ones are replaced by the following
            batch = nodes[: self.config.tag_replicas - len(staged)]
            nodes = nodes[len(batch) :]
            handles = await asyncio.gather(
                *(n.write_tag(doc.name, doc.ts, data) for n in batch), return_exceptions=True
            )
            for node, handle in zip(batch, handles, strict=True):
                if isinstance(handle, str):
                    staged.append((node, handle))
                elif isinstance(handle, OSError):
                    logger.warning("tag %s: writing to %s failed: %s", doc.name, node.host, handle)
                else:
                    raise handle
        if len(staged) < min(self.config.tag_min_replicas, self.config.tag_replicas):
            for node, staging in staged:
                try:
                    await node.abort_tag(staging)
                except OSError as exc:  # GC removes the staging file later
                    logger.warning("tag %s: abort on %s failed: %s", doc.name, node.host, exc)
            raise errors.internal("replication_failed" if hosts else "no_nodes")
        locations = []
        committed = await asyncio.gather(
            *(node.commit_tag(staging) for node, staging in staged), return_exceptions=True
        )
        for (node, _staging), url in zip(staged, committed, strict=True):
            if isinstance(url, str):
                locations.append(url)
            elif isinstance(url, OSError):
                logger.warning("tag %s: commit on %s failed: %s", doc.name, node.host, url)
            else:
                raise url
        if not locations:
            raise errors.internal("commit_failed")
        self._cache[doc.name] = _Cached(doc, locations)
        if doc.name == DELETED_TAG:
            self._deleted = _tag_names(doc.urls)
        return locations

    async def _new_version(self, base: TagDoc, **changes: Any) -> list[str]:
        now = self.clock()
        ts = self._ts.now(now)
        if ts <= base.ts:
            ts = Timestamp.from_micros(base.ts.micros + 1)
        return await self._write(base.new_version(ts, now, **changes))

    async def _create(self, name: str, token: Token, **changes: Any) -> list[str]:
        """A new (or re-created) tag: empty, tokens from the request (1.10, 1.11)."""
        locations = await self._new_version(empty_tag(name, token), **changes)
        if name != DELETED_TAG and name in await self.deleted_names():
            await self._undelete(name)
        return locations

    # -- operations (2.4.5 - 2.4.11) -------------------------------------------------------
    async def get(self, name: str, token: Token) -> dict[str, Any]:
        doc = await self._serialized(name, lambda: self._readable(name, token))
        return doc.served()

    async def _readable(self, name: str, token: Token, write: bool = False) -> TagDoc:
        doc = (await self._current(name)).doc
        if doc is None:
            raise DDFSError(404, errors.TAG_NOT_FOUND)
        privilege = read_privilege(doc, token)
        if privilege == "denied" or (write and privilege != "write"):
            raise errors.unauthorized()
        return doc

    async def get_attr(self, name: str, attr: str, token: Token) -> Any:
        async def op() -> Any:
            doc = await self._readable(name, token, write=attr == WRITE_TOKEN)
            if attr == URLS:
                return doc.urls
            if attr == READ_TOKEN:
                return doc.read_token
            if attr == WRITE_TOKEN:
                return doc.write_token
            if attr.startswith("ddfs:") or attr not in doc.user_data:
                raise DDFSError(404, errors.ATTR_NOT_FOUND)
            return doc.user_data[attr]

        return await self._serialized(name, op)

    async def append(
        self,
        name: str,
        urls: list[list[str]],
        token: Token,
        *,
        update: bool = False,
        delayed: bool = False,
    ) -> list[str]:
        """POST (1.9): the locations of the new version, or the current ones."""

        async def op() -> list[str] | asyncio.Future[list[str]]:
            cached = await self._current(name)
            doc = cached.doc
            if doc is None:
                return await self._create(name, token, urls=dedup_new(urls) if update else urls)
            if not can_write(doc, token):
                raise errors.unauthorized()
            if delayed:
                return self._buffer(name, urls, update)
            merged = append_urls(doc.urls, urls, update)
            if merged is None:
                return cached.locations
            return await self._new_version(doc, urls=merged)

        result = await self._serialized(name, op, flush=not delayed)
        return await result if isinstance(result, asyncio.Future) else result

    async def put_urls(self, name: str, urls: list[list[str]], token: Token) -> list[str]:
        """PUT: replace the urls; always a new version (2.4.8)."""
        return await self.set_attr(name, URLS, urls, token)

    async def set_attr(self, name: str, attr: str, value: Any, token: Token) -> list[str]:
        """PUT ``ddfs:urls``, a token or a user attribute; creates missing tags (2.4.9)."""
        if attr.startswith("ddfs:") and attr not in (URLS, READ_TOKEN, WRITE_TOKEN):
            raise DDFSError(404, errors.ATTR_NOT_FOUND)

        async def op() -> list[str]:
            doc = (await self._current(name)).doc
            if doc is not None and not can_write(doc, token):
                raise errors.unauthorized()
            base = doc if doc is not None else empty_tag(name, token)
            if attr == URLS:
                changes: dict[str, Any] = {"urls": value}
            elif attr == READ_TOKEN:
                changes = {"read_token": value}
            elif attr == WRITE_TOKEN:
                changes = {"write_token": value}
            else:
                if len(base.user_data) >= 1000:
                    raise DDFSError(403, errors.TOO_MANY_ATTRS)
                changes = {"user_data": {**base.user_data, attr: value}}
            if doc is None:
                return await self._create(name, token, **changes)
            return await self._new_version(doc, **changes)

        return await self._serialized(name, op)

    async def del_attr(self, name: str, attr: str, token: Token) -> str:
        """DELETE an attribute: always a new version; 404 on a missing tag (2.4.11)."""

        async def op() -> str:
            doc = (await self._current(name)).doc
            if doc is None:
                raise DDFSError(404, errors.ATTR_NOT_FOUND)
            if not can_write(doc, token):
                raise errors.unauthorized()
            if attr == URLS:
                changes: dict[str, Any] = {"urls": []}
            elif attr == READ_TOKEN:
                changes = {"read_token": None}
            elif attr == WRITE_TOKEN:
                changes = {"write_token": None}
            elif attr.startswith("ddfs:"):
                raise DDFSError(404, errors.ATTR_NOT_FOUND)
            else:
                changes = {"user_data": {k: v for k, v in doc.user_data.items() if k != attr}}
            await self._new_version(doc, **changes)
            return "deleted"

        return await self._serialized(name, op)

    async def delete(self, name: str, token: Token) -> str:
        """Tombstone the tag in ``+deleted`` (also when it never existed, 1.11)."""

        async def op() -> str:
            doc = (await self._current(name)).doc
            if doc is not None and not can_write(doc, token):
                raise errors.unauthorized()
            await self.append(DELETED_TAG, [["tag://" + name]], INTERNAL, update=True)
            return "deleted"

        return await self._serialized(name, op)

    async def _undelete(self, name: str) -> None:
        async def op() -> None:
            doc = (await self._load(DELETED_TAG)).doc
            if doc is None:
                return
            kept = [e for e in doc.urls if entry_name(e) != name or not _is_tag_entry(e)]
            await self._new_version(doc, urls=kept)

        await self._serialized(DELETED_TAG, op)

    async def list(self, prefix: str = "") -> list[str]:
        """Names of live tags starting with ``prefix``, sorted (2.4.4)."""
        hosts = self._check_nodes()
        names: set[str] = set()
        for _node, found in await self._ask_nodes(hosts, lambda node: node.tag_names()):
            names.update(found)
        deleted = await self.deleted_names()
        return sorted(
            n for n in names if n.startswith(prefix) and n != DELETED_TAG and n not in deleted
        )

    # -- delayed updates (1.9) ------------------------------------------------------------
    def _buffer(self, name: str, urls: list[list[str]], update: bool) -> asyncio.Future[list[str]]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[str]] = loop.create_future()
        batch = self._delayed.setdefault(name, [])
        batch.append(_Delayed(urls, update, future))
        if name not in self._timers:
            self._timers[name] = loop.call_later(self.config.delayed_flush, self._flush_later, name)
        return future

    def _flush_later(self, name: str) -> None:
        self._timers.pop(name, None)

        async def flush() -> None:
            async with self._lock(name):
                await self._flush_delayed(name)

        task = asyncio.get_running_loop().create_task(flush())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_delayed(self, name: str) -> None:
        """Merge buffered appends into one version per ``update`` flag (lock held)."""
        batch = self._delayed.pop(name, None)
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()
        if not batch:
            return
        for update in (False, True):
            group = [d for d in batch if d.update == update]
            if not group:
                continue
            # the same result as applying the requests one after the other
            ordered = group if update else list(reversed(group))
            combined = [entry for d in ordered for entry in d.urls]
            try:
                cached = await self._current(name)
                doc = cached.doc
                if doc is None:
                    result = await self._create(name, INTERNAL, urls=dedup_new(combined))
                else:
                    merged = append_urls(doc.urls, combined, update)
                    result = (
                        cached.locations
                        if merged is None
                        else await self._new_version(doc, urls=merged)
                    )
            except Exception as exc:
                for d in group:
                    if not d.future.done():
                        d.future.set_exception(exc)
                continue
            for d in group:
                if not d.future.done():
                    d.future.set_result(list(result))

    # -- for GC (5.2, 5.5) ----------------------------------------------------------------
    async def snapshot(self, name: str) -> TagDoc | None:
        """The current document of a live tag (``+deleted`` included), serialized."""
        return await self._serialized(name, lambda: self._snapshot_doc(name))

    async def _snapshot_doc(self, name: str) -> TagDoc | None:
        return (await self._current(name)).doc

    async def live_tags(self) -> list[str]:
        return await self.list() + [DELETED_TAG]

    async def rewrite_if_unchanged(
        self, name: str, expected_id: str, urls: list[list[str]], force: bool = False
    ) -> bool:
        """GC's rewrite of a tag (RR2): only if it is still the version GC inspected."""

        async def op() -> bool:
            doc = (await self._current(name)).doc
            if doc is None or doc.id != expected_id:
                return False
            if urls == doc.urls and not force:
                return False
            await self._new_version(doc, urls=urls)
            return True

        return await self._serialized(name, op)

    async def prune_deleted(self, names: set[str]) -> None:
        """Drop names from ``+deleted`` after their quarantine (GC5)."""

        async def op() -> None:
            doc = (await self._load(DELETED_TAG)).doc
            if doc is None:
                return
            kept = [e for e in doc.urls if not (_is_tag_entry(e) and entry_name(e) in names)]
            if kept != doc.urls:
                await self._new_version(doc, urls=kept)

        await self._serialized(DELETED_TAG, op)


def _is_tag_entry(entry: list[str]) -> bool:
    return bool(entry) and entry[0].startswith("tag://")


def _tag_names(urls: list[list[str]]) -> set[str]:
    return {e[0][len("tag://") :] for e in urls if _is_tag_entry(e)}
