"""DDFS garbage collection and re-replication on the master (ddfs.md 5).

One run goes through the phases of 5.2 (``gc_status`` reports them):

* ``start``: every up node scans its volumes (stale ``!partial`` files are removed);
* ``build_map``/``map_wait``: the current version of every live tag is read and every blob
  URL in it is checked against the scans (present / missing);
* ``gc``: unreferenced objects are judged (5.3): superseded tag versions go at once,
  orphans once older than their expiry, lost replicas are kept as *recovered* unless the
  blob has more than ``Kb + 1`` copies; then ``+deleted`` is pruned after its quarantine;
* ``rr_blobs``: blobs with fewer than ``Kb`` usable replicas (GC-blacklisted nodes do not
  count) are copied to other nodes, keeping the blob id;
* ``rr_tags``: tags whose replica sets changed, that point at GC-blacklisted nodes, or
  with fewer than ``Kt`` version replicas are rewritten (if unchanged since the scan);
  GC-blacklisted nodes nothing refers to any more become "safe to remove".

Runs start ``gc_initial_wait`` seconds after the master, then every ``gc_interval``
seconds, or at once through ``gc_start``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import field
from typing import Any

from disco.ddfs.cluster import NodeView, node_spaces, writable_hosts
from disco.ddfs.config import DDFSConfig
from disco.ddfs.names import DELETED_TAG, disco_url, parse_ddfs_url
from disco.ddfs.node import StoredObject
from disco.ddfs.nodestore import NodeStore
from disco.ddfs.placement import choose_nodes
from disco.ddfs.tagdoc import TagDoc, last_modified
from disco.ddfs.tagstore import TagStore
from disco.lazydataclass import lazy_dataclass

logger = logging.getLogger(__name__)

GC_MAX_DURATION = 3 * 24 * 60 * 60  # a run that takes longer is aborted (5.1)
WAITING = "GC is waiting for the cluster to stabilize after startup."
PHASES = {
    "start": "GC is initializing (phase start).",
    "build_map": "GC is scanning DDFS (phase build_map).",
    "map_wait": "GC is scanning DDFS (phase map_wait).",
    "gc": "GC is performing garbage collection (phase gc).",
    "rr_blobs": "GC is re-replicating blobs (phase rr_blobs).",
    "rr_blobs_wait": "GC is re-replicating blobs (phase rr_blobs_wait).",
    "rr_tags": "GC is re-replicating tags (phase rr_tags).",
}


class GCAborted(Exception):
    """The cluster is not consistent enough for a safe run (too many nodes down...)."""


@lazy_dataclass()
class _Counts:
    files: int = 0
    size: int = 0

    def add(self, obj: StoredObject) -> None:
        self.files += 1
        self.size += obj.size


@lazy_dataclass()
class _Run:
    """What one run learned."""

    now: float
    nodes: dict[str, NodeStore]
    gc_blacklist: set[str]
    scans: dict[str, dict[tuple[str, str], StoredObject]] = field(default_factory=dict)
    snapshot: dict[str, TagDoc] = field(default_factory=dict)
    present: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    missing: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    referenced: set[str] = field(default_factory=set)  # blob ids named by live tags
    recovered: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    replicated: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    counts: dict[str, _Counts] = field(default_factory=lambda: defaultdict(_Counts))
    shed: set[tuple[str, str]] = field(default_factory=set)  # (host, blob id) to delete
    late: set[str] = field(default_factory=set)  # blobs written after the scan: left alone

    def copies(self, oid: str) -> dict[str, StoredObject]:
        return {h: objs[("blob", oid)] for h, objs in self.scans.items() if ("blob", oid) in objs}


class GarbageCollector:
    """The single GC process of the master."""

    def __init__(
        self,
        config: DDFSConfig,
        tags: TagStore,
        view: NodeView,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.tags = tags
        self.view = view
        self.clock = clock
        self.phase = ""
        self.waiting = True
        self.last_stats: dict[str, Any] | None = None
        self.safe_blacklist: list[str] = []
        self._deleted_seen: dict[str, float] = {}
        self._run_task: asyncio.Task[None] | None = None
        self._schedule: asyncio.Task[None] | None = None
        self._progress = time.monotonic()

    # -- control (2.4.12) -----------------------------------------------------------------
    def status(self) -> str:
        if self.phase:
            return PHASES[self.phase]
        return WAITING if self.waiting else ""

    def start(self) -> str:
        if self.waiting:
            return "GC is waiting"
        self._ensure_run()
        return "GC has started"

    def stats(self) -> Any:
        return self.last_stats if self.last_stats is not None else ""

    def start_schedule(self) -> None:
        self._schedule = asyncio.get_running_loop().create_task(self._scheduled())

    async def close(self) -> None:
        for task in (self._schedule, self._run_task):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _scheduled(self) -> None:
        await asyncio.sleep(self.config.gc_initial_wait)
        self.waiting = False
        while True:
            started = self.clock()
            await self._ensure_run()
            await asyncio.sleep(max(0.0, started + self.config.gc_interval - self.clock()))

    def _ensure_run(self) -> asyncio.Task[None]:
        if self._run_task is None or self._run_task.done():
            self.phase = "start"  # busy from now on: gc_status never reads "" before it ran
            self._run_task = asyncio.get_running_loop().create_task(self._guarded_run())
        return self._run_task

    async def _guarded_run(self) -> None:
        """One run, aborted after ``GC_MAX_DURATION`` or ``gc_progress_timeout`` seconds
        without progress (a hung node)."""
        started = self._progress = time.monotonic()
        task = asyncio.ensure_future(self.run())
        try:
            while not task.done():
                limit = self.config.gc_progress_timeout
                await asyncio.wait({task}, timeout=max(0.05, min(limit / 4, 60.0)))
                now = time.monotonic()
                if not task.done() and (
                    now - self._progress > limit or now - started > GC_MAX_DURATION
                ):
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
                    logger.warning("DDFS GC aborted: no progress for %.0f s", now - self._progress)
                    return
            task.result()
        except GCAborted as exc:
            logger.warning("DDFS GC aborted: %s", exc)
        except asyncio.CancelledError:
            task.cancel()
            raise
        except Exception:
            logger.exception("DDFS GC failed")
        finally:
            self.phase = ""

    def _tick(self) -> None:
        self._progress = time.monotonic()

    # -- one run --------------------------------------------------------------------------
    async def run(self) -> None:
        """One full GC + re-replication run (callers normally use ``start``)."""
        self.phase = "start"
        hosts = self.view.hosts()
        nodes = {h: n for h in hosts if (n := self.view.node(h)) is not None}
        if hosts and len(hosts) - len(nodes) >= self.config.tag_min_replicas:
            raise GCAborted("too many nodes down")
        run = _Run(self.clock(), nodes, self.view.gc_blacklist())
        live = await self.tags.live_tags()
        for host, node in list(nodes.items()):
            self._tick()
            try:
                objs = await node.scan(self.config.partial_expires, run.now)
            except OSError as exc:  # a node that does not answer is left out, as if down
                logger.warning("GC: node %s does not answer: %s", host, exc)
                del nodes[host]
                continue
            run.scans[host] = {(o.kind, o.oid): o for o in objs}
        if hosts and len(hosts) - len(nodes) >= self.config.tag_min_replicas:
            raise GCAborted("too many nodes down")
        self.phase = "build_map"
        await self._build_map(run, live)
        self.phase = "map_wait"
        self.phase = "gc"
        overused = await self._overused(run) if self.config.space_aware else {}
        self._shed_surplus(run, overused)
        await self._collect(run)
        await self._prune_deleted(run)
        self.last_stats = {
            "timestamp": last_modified(self.clock()),
            "stats": {
                key: [run.counts[key].files, run.counts[key].size]
                for key in ("Tags kept", "Tags deleted", "Blobs kept", "Blobs deleted")
            },
        }
        self.phase = "rr_blobs"
        await self._replicate_blobs(run)
        await self._offload(run, overused)
        self.phase = "rr_blobs_wait"
        self.phase = "rr_tags"
        await self._rewrite_tags(run)
        for host, node in nodes.items():
            try:
                await node.rescan_tags()
            except OSError as exc:
                logger.warning("GC: rescanning the tags of %s failed: %s", host, exc)
        self.tags.forget_cache()
        self.safe_blacklist = await self._safe_to_remove(run)

    async def _build_map(self, run: _Run, live: list[str]) -> None:
        for name in live:
            self._tick()
            doc = await self.tags.snapshot(name)
            if doc is None:
                continue  # deleted meanwhile
            run.snapshot[name] = doc
            for entry in doc.urls:
                for url in entry:
                    parsed = parse_ddfs_url(url)
                    if parsed is None or parsed.kind != "blob":
                        continue
                    run.referenced.add(parsed.oid)
                    scan = run.scans.get(parsed.host)
                    if scan is None:
                        continue  # not an up node: left alone, never judged absent
                    if ("blob", parsed.oid) in scan:
                        run.present[parsed.oid].add(parsed.host)
                        continue
                    try:
                        late = await run.nodes[parsed.host].find_blob(parsed.oid)
                    except OSError:
                        late = "?"  # the node stopped answering: judge nothing of this blob
                    if late:
                        run.late.add(parsed.oid)  # uploaded after the scan: next run's job
                    else:
                        run.missing[parsed.oid].add(parsed.host)

    async def _collect(self, run: _Run) -> None:
        for host, objs in run.scans.items():
            node = run.nodes[host]
            for obj in objs.values():
                self._tick()
                verdict = self._judge(run, host, obj)
                expires = (
                    self.config.orphan_tag_expires
                    if obj.kind == "tag"
                    else self.config.orphan_blob_expires
                )
                delete = verdict is True or (verdict is None and run.now - obj.ts.seconds > expires)
                what = "Tags" if obj.kind == "tag" else "Blobs"
                if delete:
                    try:
                        await node.delete(obj, self.config.paranoid_delete)
                    except OSError as exc:
                        logger.warning("GC: cannot delete %s on %s: %s", obj.oid, host, exc)
                        run.counts[what + " kept"].add(obj)
                        continue
                    run.counts[what + " deleted"].add(obj)
                    if self.config.gc_delete_pause > 0:
                        await asyncio.sleep(self.config.gc_delete_pause)  # spare the disks
                else:
                    run.counts[what + " kept"].add(obj)

    def _judge(self, run: _Run, host: str, obj: StoredObject) -> bool | None:
        """5.3: ``True`` garbage, ``False`` keep, ``None`` unknown (orphan)."""
        if (host, obj.oid) in run.shed:
            return True
        if obj.kind == "tag":
            doc = run.snapshot.get(obj.name)
            if doc is None:
                return None
            return obj.ts < doc.ts
        if host in run.present.get(obj.oid, ()):
            return False  # in use
        if obj.oid not in run.referenced:
            return None
        if len(run.copies(obj.oid)) > self.config.blob_replicas + 1:
            return True
        run.recovered[obj.oid][host] = disco_url(host, obj.volume, "blob", obj.oid)
        return False

    async def _prune_deleted(self, run: _Run) -> None:
        doc = run.snapshot.get(DELETED_TAG)
        listed = {e[0][len("tag://") :] for e in (doc.urls if doc else []) if e}
        self._deleted_seen = {n: self._deleted_seen.get(n, run.now) for n in listed}
        expired = {
            n
            for n, t in self._deleted_seen.items()
            if run.now - t > self.config.deleted_tag_expires
        }
        if expired:
            await self.tags.prune_deleted(expired)

    async def _replicate_blobs(self, run: _Run) -> None:
        writable = [h for h in writable_hosts(self.view) if h in run.nodes]
        for oid in sorted(run.referenced - run.late):
            self._tick()
            usable = (run.present.get(oid, set()) | set(run.recovered.get(oid, {}))) - (
                run.gc_blacklist
            )
            need = self.config.blob_replicas - len(usable)
            if need <= 0:
                continue
            copies = run.copies(oid)
            if not copies:
                logger.warning("GC: blob %s has no copy left on any node", oid)
                continue
            source = random.choice(sorted(copies))
            await self._copy(run, oid, source, [h for h in writable if h not in copies], need)

    async def _copy(self, run: _Run, oid: str, source: str, candidates: list[str], k: int) -> int:
        """Copy blob ``oid`` from node ``source`` to ``k`` of ``candidates`` (same id);
        how many copies were made."""
        targets = choose_nodes(
            await node_spaces(self.view, candidates), k, min_free_kb=self.config.min_free_kb
        )
        source_url = disco_url(source, run.scans[source][("blob", oid)].volume, "blob", oid)
        made = 0
        for target in targets:
            self._tick()
            try:
                url = await run.nodes[target].replicate_blob(oid, source_url)
            except OSError as exc:
                logger.warning("GC: copying %s to %s failed: %s", oid, target, exc)
                continue
            run.replicated[oid][target] = url
            made += 1
        return made

    # -- space-aware rebalancing (5.6) ---------------------------------------------------
    async def _overused(self, run: _Run) -> dict[str, float]:
        """Up nodes whose utilisation exceeds the average by more than the threshold."""
        spaces = await node_spaces(self.view, sorted(run.nodes))
        spaces = [s for s in spaces if s.free_kb + s.used_kb]
        use = {s.host: s.used_kb / (s.free_kb + s.used_kb) for s in spaces}
        if not use:
            return {}
        average = sum(use.values()) / len(use)
        return {
            h: u - average
            for h, u in use.items()
            if u - average > self.config.balance_threshold and h not in run.gc_blacklist
        }

    def _shed_surplus(self, run: _Run, overused: dict[str, float]) -> None:
        """The most over-used node drops its copies of blobs with more than ``Kb`` usable
        replicas elsewhere too (the extra replicas of an earlier run)."""
        if not overused:
            return
        host = max(overused, key=lambda h: overused[h])
        for oid, hosts in run.present.items():
            if host in hosts and len(hosts - run.gc_blacklist) > self.config.blob_replicas:
                run.shed.add((host, oid))
                hosts.discard(host)
                run.missing[oid].add(host)

    async def _offload(self, run: _Run, overused: dict[str, float]) -> None:
        """Blobs on over-used nodes get one extra replica on another node, up to the
        threshold's share of the node's disk per run."""
        others = [h for h in writable_hosts(self.view) if h in run.nodes and h not in overused]
        for host in overused:
            try:
                free, used = await run.nodes[host].disk_usage()
            except OSError:
                continue
            budget = self.config.balance_threshold * (free + used) * 1024
            for oid, hosts in list(run.present.items()):
                if budget <= 0:
                    break
                if host not in hosts or run.replicated.get(oid):
                    continue
                candidates = [h for h in others if h not in run.copies(oid)]
                if await self._copy(run, oid, host, candidates, 1):
                    budget -= run.scans[host][("blob", oid)].size

    async def _rewrite_tags(self, run: _Run) -> None:
        up = [h for h in writable_hosts(self.view) if h in run.nodes]
        want_replicas = min(self.config.tag_replicas, len(up))
        for name, doc in run.snapshot.items():
            self._tick()
            urls = [self._new_entry(run, entry) for entry in doc.urls]
            changed = urls != doc.urls
            if changed:
                urls = [e for e in urls if e]  # [quirk] GC drops empty entries
            replicas = sum(await asyncio.gather(*(_has_version(run.nodes[h], doc) for h in up)))
            force = replicas < want_replicas
            if changed or force:
                try:
                    await self.tags.rewrite_if_unchanged(name, doc.id, urls, force=force)
                except Exception as exc:
                    logger.warning("GC: rewriting tag %s failed: %s", name, exc)

    def _new_entry(self, run: _Run, entry: list[str]) -> list[str]:
        blobs = [p for u in entry if (p := parse_ddfs_url(u)) is not None and p.kind == "blob"]
        if not blobs or blobs[0].oid in run.late:
            return entry
        oid = blobs[0].oid
        absent = run.missing.get(oid, set())
        kept = [u for u in entry if (p := parse_ddfs_url(u)) is None or p.host not in absent]
        hosts = {p.host for u in kept if (p := parse_ddfs_url(u)) is not None}
        for extra in (run.recovered.get(oid, {}), run.replicated.get(oid, {})):
            for host, url in extra.items():
                if host not in hosts:
                    kept.append(url)
                    hosts.add(host)
        if not hosts:
            return entry  # no copy anywhere: keep the reference rather than drop the entry
        usable = hosts - run.gc_blacklist
        if hosts & run.gc_blacklist and len(usable) >= self.config.blob_replicas:
            kept = [
                u
                for u in kept
                if (p := parse_ddfs_url(u)) is None or p.host not in run.gc_blacklist
            ]
        if kept == entry:
            return entry
        return sorted(set(kept))

    async def _safe_to_remove(self, run: _Run) -> list[str]:
        """GC-blacklisted nodes no live tag refers to and that hold no current tag version."""
        used: set[str] = set()
        for name in await self.tags.live_tags():
            doc = await self.tags.snapshot(name)
            if doc is None:
                continue
            for entry in doc.urls:
                for url in entry:
                    parsed = parse_ddfs_url(url)
                    if parsed is not None:
                        used.add(parsed.host)
            hosts = list(run.nodes)
            versions = await asyncio.gather(
                *(run.nodes[h].tag_version(name) for h in hosts), return_exceptions=True
            )
            for host, version in zip(hosts, versions, strict=True):
                if isinstance(version, BaseException):
                    if not isinstance(version, OSError):
                        raise version
                    used.add(host)  # cannot tell: not safe to remove yet
                elif version is not None and version[0] == doc.ts:
                    used.add(host)
        return sorted(h for h in run.gc_blacklist if h not in used)

    # -- hosted_tags (2.4.12) -------------------------------------------------------------
    async def hosted_tags(self, host: str) -> list[str]:
        """Tags with a replica on ``host`` or that (through ``tag://``) reference a blob
        stored there."""
        node = self.view.node(host)
        docs: dict[str, TagDoc] = {}
        for name in await self.tags.list():
            doc = await self.tags.snapshot(name)
            if doc is not None:
                docs[name] = doc
        direct = set()
        for name, doc in docs.items():
            try:
                version = await node.tag_version(name) if node is not None else None
            except OSError:
                version = None  # as if down
            if version is not None and version[0] == doc.ts:
                direct.add(name)
            for entry in doc.urls:
                for url in entry:
                    parsed = parse_ddfs_url(url)
                    if parsed is not None and parsed.kind == "blob" and parsed.host == host:
                        direct.add(name)
        found = set(direct)
        changed = True
        while changed:  # tags referring (through tag://) to found tags
            changed = False
            for name, doc in docs.items():
                if name in found:
                    continue
                refs = {e[0][len("tag://") :] for e in doc.urls if e and e[0].startswith("tag://")}
                if refs & found:
                    found.add(name)
                    changed = True
        return sorted(found)


async def _has_version(node: NodeStore, doc: TagDoc) -> bool:
    """Does the node hold this tag version now (its index may list a lost file)?"""
    try:
        return await node.has_tag_version(doc.name, doc.ts)
    except OSError:
        return False
