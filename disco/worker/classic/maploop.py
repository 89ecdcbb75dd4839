"""Where each record of a classic map task goes (library.md 17.3 steps 3 to 5).

``run_map`` takes the pairs of every entry (``map(entry, params)`` of each) and files each
record under its partition: into that partition's combiner buffer, or its output.  The
common cases are cheap and write exactly what the general loop writes:

- a combiner that only sums (``sumlike.is_sum_like``) with the default partition: every
  record adds into one dict (``sumlike.add_up``), no call per record; the partitions'
  buffers are made from it at the end;
- one destination (one partition, or none): no partition lookup per record;
- otherwise each ``str``/``bytes``/``int`` key's destination is remembered, so the
  partition function runs once per distinct key.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from disco.worker.classic import partitioner as partitioning
from disco.worker.classic import sumlike

#: What writing a record raises when the record cannot be pickled.
UNSERIALIZABLE = (TypeError, AttributeError, ValueError, RecursionError, pickle.PicklingError)


def output_error(source: str, key: Any, value: Any, exc: Exception) -> Exception:
    """``OutputError`` naming the record that could not be written."""
    from disco.error import OutputError
    from disco.failure import short_repr

    return OutputError(
        "a record yielded by %s cannot be serialized: %s: %s (key %s, value %s)"
        % (source, type(exc).__name__, exc, short_repr(key, 80), short_repr(value, 80))
    )


def run_map(
    pair_iters: Iterable[Iterable[Any]],
    writer: Callable[[Any], Any],
    partition: Any,
    partitions: Any,
    combiner: Any,
    params: Any,
) -> None:
    """File every record of ``pair_iters`` (one iterable of ``(key, value)`` per entry)
    under ``partition(key, partitions, params)``; ``writer(part)`` is that partition's
    output (``add(key, value)``), asked for when its first record is written."""
    router = Router(writer, partition, partitions, combiner, params)
    pair_iters = iter(pair_iters)
    if router.stable and combiner and sumlike.is_sum_like(combiner):
        rest = router.add_up(pair_iters)
        if rest is not None:  # a key of another type: the general loop from that record on
            router.general(itertools.chain((rest,), pair_iters))
    elif router.stable and router.one_partition:
        router.one_destination(pair_iters)
    else:
        router.general(pair_iters)
    router.finish()


class Router:
    """The destinations of one map task's records: a combiner buffer per partition
    (with a combiner) or the partition's output (without)."""

    def __init__(
        self,
        writer: Callable[[Any], Any],
        partition: Any,
        partitions: Any,
        combiner: Any,
        params: Any,
    ) -> None:
        self.writer = writer
        self.partition_of = partitioning.partitioner(partition, partitions, params)
        self.partition_once = partitioning.partitioner(partition, partitions, params, False)
        # The same key always goes to the same partition (no partitions, or the default
        # partition function, which depends on the key only).
        self.stable = partitioning.is_stable(partition, partitions)
        self.one_partition = not partitions or partitions == 1
        self.combiner = combiner
        self.params = params
        self.buffers: dict[Any, dict[Any, Any]] = {}
        self.part_of: dict[int, Any] = {}  # id(destination) -> its partition

    def destination(self, part: Any) -> Any:
        if self.combiner:
            dest = self.buffers.get(part)
            if dest is None:
                dest = self.buffers[part] = {}
        else:
            dest = self.writer(part)
        self.part_of[id(dest)] = part
        return dest

    def emit(self, part: Any, pairs: Iterable[Any] | None) -> None:
        """Write what the combiner returned for partition ``part``."""
        if pairs:
            out = self.writer(part)
            for key, value in pairs:
                try:
                    out.add(key, value)
                except UNSERIALIZABLE as e:
                    raise output_error("combiner", key, value, e) from e

    def finish(self) -> None:
        """The combiner's last call for each buffer (``done=True``)."""
        for part, buffer in self.buffers.items():
            self.emit(part, self.combiner(None, None, buffer, True, self.params))

    def add_up(self, pair_iters: Iterator[Iterable[Any]]) -> Iterator[Any] | None:
        """A sum-like combiner: every record adds into one dict, no call per record;
        the partitions' buffers are made from it (what they would hold).  Returns what
        ``sumlike.add_up`` returns: the rest of an entry for the general loop, or None."""
        totals: dict[Any, Any] = {}
        rest = sumlike.add_up(pair_iters, totals, self.one_partition)
        destination, partition_of = self.destination, self.partition_once  # once per key
        for key, total in totals.items():
            destination(partition_of(key))[key] = total
        return rest

    def one_destination(self, pair_iters: Iterator[Iterable[Any]]) -> None:
        """Every record goes to one destination: no per-record partition lookup."""
        combiner, params, part_of = self.combiner, self.params, self.part_of
        one: Any = None
        for pairs in pair_iters:
            for key, value in pairs:
                if one is None:
                    one = self.destination(self.partition_of(key))
                if combiner:
                    emitted = combiner(key, value, one, False, params)
                    if emitted:
                        self.emit(part_of[id(one)], emitted)
                else:
                    try:
                        one.add(key, value)
                    except UNSERIALIZABLE as e:
                        raise output_error("map", key, value, e) from e

    def general(self, pair_iters: Iterator[Iterable[Any]]) -> None:
        """Any partition function and combiner; with a stable partition each
        str/bytes/int key's destination is remembered (up to ``CACHE_LIMIT`` keys)."""
        combiner, params, part_of, stable = self.combiner, self.params, self.part_of, self.stable
        destination, partition_of = self.destination, self.partition_of
        by_key: dict[Any, Any] = {}  # stable partitions: key -> destination
        known = by_key.get
        limit = partitioning.CACHE_LIMIT
        for pairs in pair_iters:
            for key, value in pairs:
                kind = type(key)
                if stable and (kind is str or kind is bytes or kind is int):
                    dest = known(key)
                    if dest is None:
                        dest = destination(partition_of(key))
                        if len(by_key) < limit:
                            by_key[key] = dest
                else:
                    dest = destination(partition_of(key))
                if combiner:
                    emitted = combiner(key, value, dest, False, params)
                    if emitted:
                        self.emit(part_of[id(dest)], emitted)
                else:
                    try:
                        dest.add(key, value)
                    except UNSERIALIZABLE as e:
                        raise output_error("map", key, value, e) from e
