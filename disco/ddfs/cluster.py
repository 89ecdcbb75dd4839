"""The master's view of the DDFS nodes (ddfs.md 0, 5.6).

``NodeView`` is what the DDFS master needs from the rest of the master: the configured
hosts, each reachable node's ``DDFSNode`` and the two blacklists.  ``RuntimeView`` reads
them from the master runtime and its backend (``Backend.ddfs_node``).
"""

from __future__ import annotations

from typing import Any, Protocol

from disco.ddfs.node import DDFSNode
from disco.ddfs.placement import NodeSpace


class NodeView(Protocol):
    def hosts(self) -> list[str]:
        """Every configured node, blacklisted ones included."""
        ...

    def node(self, host: str) -> DDFSNode | None:
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

    def node(self, host: str) -> DDFSNode | None:
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


def node_spaces(view: NodeView, hosts: list[str]) -> list[NodeSpace]:
    spaces = []
    for host in hosts:
        node = view.node(host)
        free, used = node.disk_usage() if node is not None else (0, 0)
        spaces.append(NodeSpace(host, free, used))
    return spaces
