"""Scheduling policy (master-api.md 10.5), pure functions over small state objects.

Owns: node slots and eligibility (connected, not blacklisted, a free slot), the job
order of the ``fair`` and ``fifo`` policies, fair-share priority updates, and the node
choice for one task (pinning, locality, avoid-lists).  The coordinator owns the state
and calls these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from disco.lazydataclass import lazy_dataclass


@lazy_dataclass()
class DiskFull:
    """A node whose data disk was full for a task (issue 8, 4): ``free`` bytes on
    ``disk`` now, the smallest need of the tasks waiting for space there, ``since``
    when it became full."""

    disk: str
    free: int
    needed: int
    since: float


@dataclass
class NodeState:
    """One configured node as the coordinator sees it (3.3 counters included)."""

    host: str
    max_workers: int
    connected: bool = True
    blacklisted: bool = False
    running: int = 0
    job_ok: int = 0
    data_error: int = 0
    error: int = 0
    full: DiskFull | None = None

    @property
    def live(self) -> bool:
        """Usable for new tasks apart from slots: connected and not blacklisted."""
        return self.connected and not self.blacklisted

    @property
    def eligible(self) -> bool:
        return self.live and self.running < self.max_workers


def eligible_nodes(nodes: Iterable[NodeState]) -> list[NodeState]:
    """Nodes with a free slot, least loaded first, then by host name (10.5)."""
    return sorted((n for n in nodes if n.eligible), key=lambda n: (n.running, n.host))


def total_cores(nodes: Iterable[NodeState]) -> int:
    """Slots of connected, non-blacklisted nodes (the fair share's ``cores``)."""
    return sum(n.max_workers for n in nodes if n.live)


@dataclass(frozen=True)
class JobView:
    name: str
    seq: int  # submission order
    priority: float  # fair share: lower goes first


def order_jobs(policy: str, jobs: Sequence[JobView]) -> list[str]:
    """Job names in the order they are offered a slot (10.5)."""
    if policy == "fifo":
        return [j.name for j in sorted(jobs, key=lambda j: j.seq)]
    return [j.name for j in sorted(jobs, key=lambda j: (j.priority, j.seq))]


def update_priority(prio: float, running: int, cores: int, njobs: int, alpha: float) -> float:
    """One fair-share step: ``alpha*(running/cores - 1/jobs) + (1-alpha)*prio`` (10.5)."""
    if cores <= 0 or njobs <= 0:
        return (1 - alpha) * prio
    return alpha * (running / cores - 1 / njobs) + (1 - alpha) * prio


def pick_node(
    *,
    pinned: str | None,
    input_hosts: Sequence[str],
    avoid: Iterable[str],
    eligible: Sequence[NodeState],
) -> str | None:
    """The node a task should start on now, or ``None`` if it must wait.

    A pinned task (first run, group host is a live node: 7.3) waits for its node.  An
    unpinned task goes to the first node holding one of its inputs (in input and replica
    order) that has a free slot and is not on its avoid-list; otherwise to the least
    loaded eligible node not on its avoid-list (10.5).
    """
    free = {n.host for n in eligible}
    if pinned is not None:
        return pinned if pinned in free else None
    avoided = set(avoid)
    for host in input_hosts:
        if host in free and host not in avoided:
            return host
    for node in eligible:
        if node.host not in avoided:
            return node.host
    return None
