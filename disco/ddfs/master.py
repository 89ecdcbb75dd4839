"""The DDFS part of the master: tags, blob placement and GC over the nodes (ddfs.md 0, 2).

``DDFSMaster`` is built by the master's composition root (``disco.master.server``) from
the settings and a ``NodeView`` of the runtime; ``disco.ddfs.api`` serves it.  The master
itself (results saving, purge) uses the same object with the ``INTERNAL`` token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from disco.ddfs import errors
from disco.ddfs.cluster import NodeView, node_spaces, writable_hosts
from disco.ddfs.config import DDFSConfig
from disco.ddfs.errors import DDFSError
from disco.ddfs.gate import TransferGate
from disco.ddfs.gc import GarbageCollector
from disco.ddfs.names import (
    TimestampClock,
    blob_prefix,
    disco_url,
    object_id,
    put_url,
    valid_name,
)
from disco.ddfs.placement import NotEnoughNodes, blob_targets
from disco.ddfs.tagstore import TagStore


class DDFSMaster:
    """Tags (``tags``), ``new_blob`` placement and the garbage collector (``gc``)."""

    def __init__(
        self,
        config: DDFSConfig,
        view: NodeView,
        *,
        local_root: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.view = view
        self.local_root = local_root  # DDFS_DATA of the node the master's server answers for
        self.clock = clock
        self.tags = TagStore(config, view, clock)
        self.gc = GarbageCollector(config, self.tags, view, clock)
        self._blob_ts = TimestampClock()
        self.downloads = TransferGate()  # the master host's /ddfs/ file downloads

    def start(self) -> None:
        self.gc.start_schedule()

    async def close(self) -> None:
        await self.gc.close()
        await self.tags.close()

    async def new_blob(
        self,
        prefix: str,
        replicas: int | None = None,
        exclude: list[str] | tuple[str, ...] = (),
        include: list[str] | tuple[str, ...] = (),
    ) -> list[str]:
        """Upload URLs on ``replicas`` distinct nodes for a fresh blob id (2.4.1)."""
        if not valid_name(prefix):
            raise DDFSError(403, errors.INVALID_TAG)
        k = self.config.blob_replicas if replicas is None else replicas
        hosts = self.view.hosts()
        unknown = [h for h in list(include) + list(exclude) if h not in hosts]
        if unknown:
            raise DDFSError(403, "Requested Replica not found.")
        try:
            targets = blob_targets(
                await node_spaces(self.view, hosts),
                k,
                known=len(hosts),
                writable=set(writable_hosts(self.view)),
                exclude=set(exclude),
                include=include,
                min_free_kb=self.config.min_free_kb,
                space_aware=self.config.space_aware,
                absolute=self.config.absolute_space,
            )
        except NotEnoughNodes:
            raise DDFSError(403, errors.NOT_ENOUGH_NODES) from None
        oid = object_id(blob_prefix(prefix), self._blob_ts.now(self.clock()))
        return [put_url(host, self.config.put_port, oid) for host in targets]

    async def tag_versions(self, name: str) -> list[dict[str, Any]]:
        """Every stored version of tag ``name``, newest first, with the nodes holding
        it (the web UI; an addition beyond 0.5).  Old versions stay until GC."""
        versions: dict[str, dict[str, Any]] = {}
        for host in self.view.hosts():
            node = self.view.node(host)
            if node is None:
                continue
            try:
                objects = await node.objects("tag")
            except OSError:
                continue  # a node that does not answer: its versions are not listed
            for obj in objects:
                if obj.name != name:
                    continue
                version = versions.setdefault(
                    obj.oid, {"id": obj.oid, "time": obj.ts.seconds, "replicas": []}
                )
                version["replicas"].append(disco_url(host, obj.volume, "tag", obj.oid))
        return sorted(versions.values(), key=lambda v: v["time"], reverse=True)
