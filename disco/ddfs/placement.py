"""Where new blobs and tag versions go (ddfs.md 2.4.1, 5.6).

Pure: the caller gives the candidate nodes with their free and used space.  Nodes with
more than ``min_free_kb`` free are preferred and picked at random (weighted by free-space
ratio in space-aware mode); when there are too few of them, the emptiest nodes are taken.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from disco.lazydataclass import lazy_dataclass


@lazy_dataclass(frozen=True)
class NodeSpace:
    host: str
    free_kb: int
    used_kb: int

    def weight(self, absolute: bool) -> float:
        if absolute:
            return float(max(self.free_kb, 1))
        total = self.free_kb + self.used_kb
        return max(1.0 - (self.used_kb / total if total else 1.0), 1e-6)


class NotEnoughNodes(Exception):
    """Fewer nodes than replicas asked for."""


def choose_nodes(
    candidates: Sequence[NodeSpace],
    k: int,
    *,
    min_free_kb: int,
    space_aware: bool = False,
    absolute: bool = False,
    rng: random.Random | None = None,
) -> list[str]:
    """``k`` distinct hosts from ``candidates`` (fewer if there are not enough)."""
    rng = rng or random.Random()
    if k <= 0:
        return []
    preferred = [c for c in candidates if c.free_kb > min_free_kb]
    if len(preferred) < k:
        emptiest = sorted(candidates, key=lambda c: c.free_kb, reverse=True)
        return [c.host for c in emptiest[:k]]
    if not space_aware:
        return [c.host for c in rng.sample(preferred, k)]
    chosen: list[str] = []
    pool = list(preferred)
    while pool and len(chosen) < k:
        pick = rng.choices(pool, weights=[c.weight(absolute) for c in pool])[0]
        pool.remove(pick)
        chosen.append(pick.host)
    return chosen


def blob_targets(
    nodes: Sequence[NodeSpace],
    k: int,
    *,
    known: int,
    writable: set[str],
    exclude: set[str],
    include: Sequence[str],
    min_free_kb: int,
    space_aware: bool = False,
    absolute: bool = False,
) -> list[str]:
    """The hosts of a ``new_blob`` answer: ``include`` first, then chosen writable nodes.

    ``known`` counts every configured node (blacklisted ones too).  Raises
    ``NotEnoughNodes`` when ``k`` nodes cannot be found.
    """
    if k > known:
        raise NotEnoughNodes()
    forced = list(dict.fromkeys(include))[:k]
    pool = [
        n for n in nodes if n.host in writable and n.host not in exclude and n.host not in forced
    ]
    chosen = forced + choose_nodes(
        pool, k - len(forced), min_free_kb=min_free_kb, space_aware=space_aware, absolute=absolute
    )
    if len(chosen) < k:
        raise NotEnoughNodes()
    return chosen
