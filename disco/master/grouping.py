"""Grouping of a stage's inputs into tasks (master-api.md 7.2), pure.

An *item* is one output of the previous stage (or one job input): a data item with
replica URLs, or a directory item (an index file on one host with the labels it holds).
``assign`` says which group(s) an item belongs to and what the task receives for it;
``group_items`` groups a complete list (non-concurrent stages), the coordinator calls
``assign`` item by item for concurrent stages (7.4).

``cluster`` (the configured node names), when given, makes every input whose host is not
a node count as one fictitious node (library.md 11.3): ``group_node`` puts all external
``http://`` or ``raw://`` inputs into one task instead of one task per outside host name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HOST = re.compile(r"^[A-Za-z0-9]+://([^/:]*)")


def url_host(url: str) -> str:
    """The scheduling host of a URL: between ``scheme://`` and the next ``/`` or ``:`` (9.3)."""
    match = _HOST.match(url)
    return match.group(1) if match else ""


@dataclass(frozen=True)
class DataItem:
    label: int
    size: int
    urls: tuple[str, ...]

    @property
    def host(self) -> str:
        # 7.2 picks a replica's host at random; we take the first replica's host so that
        # grouping is deterministic.
        return url_host(self.urls[0]) if self.urls else ""


@dataclass(frozen=True)
class DirItem:
    url: str
    labels: tuple[tuple[int, int], ...]  # (label, total size) in index order

    @property
    def host(self) -> str:
        return url_host(self.url)


Item = DataItem | DirItem


@dataclass(frozen=True)
class TaskInput:
    """What a task receives for one item: label (int or "all") and replica URLs."""

    label: int | str
    urls: tuple[str, ...]


# A group key identifies the task an item goes to; ``None`` keys (split) always make a
# new task.
GroupKey = tuple[object, ...] | None
Group = tuple[int, str]  # (label, host or "")


def _distinct(labels: tuple[tuple[int, int], ...]) -> list[int]:
    seen: dict[int, None] = {}
    for label, _size in labels:
        seen.setdefault(label, None)
    return list(seen)


def _node(host: str, cluster: frozenset[str] | None) -> str:
    """The grouping host: ``host``, or ``""`` (the one outside node) if not in ``cluster``."""
    return host if cluster is None or host in cluster else ""


def assign(
    grouping: str, item: Item, cluster: frozenset[str] | None = None
) -> list[tuple[GroupKey, Group, TaskInput]]:
    """The groups of one item (7.2).  Items without replicas or labels are ignored."""
    if isinstance(item, DataItem):
        if not item.urls:
            return []
        inp = TaskInput(item.label, item.urls)
        label = item.label
        if grouping == "split":
            return [(None, (label, item.host), inp)]
        host = _node(item.host, cluster)
        if grouping == "group_label":
            return [(("label", label), (label, ""), inp)]
        if grouping == "group_node":
            return [(("node", host), (0, host), inp)]
        if grouping == "group_node_label":
            return [(("nodelabel", label, host), (label, host), inp)]
        if grouping == "group_all":
            return [(("all",), (0, ""), inp)]
        raise ValueError("unknown grouping %r" % grouping)
    labels = _distinct(item.labels)
    if not labels:
        return []
    urls = (item.url,)
    if grouping == "split":
        return [(None, (lb, item.host), TaskInput(lb, urls)) for lb in labels]
    host = _node(item.host, cluster)
    if grouping == "group_label":
        return [(("label", lb), (lb, ""), TaskInput(lb, urls)) for lb in labels]
    if grouping == "group_node_label":
        return [(("nodelabel", lb, host), (lb, host), TaskInput(lb, urls)) for lb in labels]
    if grouping == "group_node":
        return [(("node", host), (0, host), TaskInput("all", urls))]
    if grouping == "group_all":
        return [(("all",), (0, ""), TaskInput("all", urls))]
    raise ValueError("unknown grouping %r" % grouping)


def _sort_key(key: GroupKey) -> tuple[str, ...]:
    assert key is not None
    return tuple("%020d" % k if isinstance(k, int) else str(k) for k in key)


def group_items(
    grouping: str, items: list[Item], cluster: frozenset[str] | None = None
) -> list[tuple[Group, list[TaskInput]]]:
    """All tasks of a non-concurrent stage, in task-id order.

    ``split`` keeps item order; the other groupings order their groups by label, then
    host (the order of 0.5's sorted group tables).
    """
    singles: list[tuple[Group, list[TaskInput]]] = []
    groups: dict[tuple[object, ...], tuple[Group, list[TaskInput]]] = {}
    for item in items:
        for key, group, inp in assign(grouping, item, cluster):
            if key is None:
                singles.append((group, [inp]))
            elif key in groups:
                groups[key][1].append(inp)
            else:
                groups[key] = (group, [inp])
    if grouping == "split":
        return singles
    return [groups[k] for k in sorted(groups, key=_sort_key)]
