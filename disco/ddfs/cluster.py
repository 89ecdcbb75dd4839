"""The master's view of the DDFS nodes (ddfs.md 0, 5.6).

``NodeView`` is what the DDFS master needs from the rest of the master: the configured
hosts, each reachable node's storage (a ``NodeStore``, ``disco.ddfs.nodestore``) and the
two blacklists.  ``RuntimeView`` reads them from the master runtime and its backend
(``Backend.ddfs_node``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from disco.ddfs.nodestore import NodeStore
from disco.ddfs.placement import NodeSpace

logger = logging.getLogger(__name__)


class NodeView(Protocol):
    def hosts(self) -> list[str]:
        """Every configured node, blacklisted ones included."""
        ...

    def node(self, host: str) -> NodeStore | None:
        """The node's storage, or ``None`` when it is down."""
        ...

    def blacklist(self) -> set[str]: ...

    def gc_blacklist(self) -> set[str]: ...


class RuntimeView:
    """``NodeView`` over the master ``Runtime`` (config table) and its backend."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime

    def hosts(self) -> list[str]:
        return [h for h, _ in self.runtime.nodes]

    def node(self, host: str) -> NodeStore | None:
        get = getattr(self.runtime.backend, "ddfs_node", None)
        return get(host) if get is not None else None

    def blacklist(self) -> set[str]:
        return set(self.runtime.cluster.blacklist)

    def gc_blacklist(self) -> set[str]:
        return set(self.runtime.cluster.gc_blacklist)


def writable_hosts(view: NodeView) -> list[str]:
    """Nodes that may receive new blobs and tag versions: up, not blacklisted."""
    banned = view.blacklist() | view.gc_blacklist()
    return [h for h in view.hosts() if h not in banned and view.node(h) is not None]


async def node_spaces(view: NodeView, hosts: list[str]) -> list[NodeSpace]:
    """Free and used space of ``hosts``, asked of all nodes at once; (0, 0) for a node
    that is down or does not answer."""

    async def space(host: str) -> NodeSpace:
        node = view.node(host)
        if node is None:
            return NodeSpace(host, 0, 0)
        try:
            free, used = await node.disk_usage()
        except OSError as exc:
            logger.warning("DDFS node %s: no disk usage: %s", host, exc)
            return NodeSpace(host, 0, 0)
        return NodeSpace(host, free, used)

    return list(await asyncio.gather(*(space(h) for h in hosts)))
