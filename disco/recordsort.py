"""Sorting the ``(key, value)`` records of ``sort=True`` by key (``disco.util.disk_sort``).

Keys are all ``bytes`` (unsigned byte order, as ``LC_ALL=C sort`` orders them) or all
``str`` (code-point order, which is the order of their UTF-8 bytes); records with equal
keys keep their input order.  The records are sorted in memory while their estimated
size stays within the sort buffer (``sort_buffer_size``, read like GNU sort's ``-S``:
``"10%"`` of the physical memory, ``"512M"``, a bare number in KiB); beyond it, sorted
runs are pickled to files next to ``filename`` and merged (``heapq.merge``, which keeps
the input order of equal keys across runs), so the result is the same either way
(docs/decisions.md, "Sorting records").

Records are taken in batches so that the checks and size estimates run in C loops:
a batch whose records are all 2-tuples with keys of the first key's exact type is
checked with one ``join``; anything else goes through the per-record checks.
"""

from __future__ import annotations

import heapq
import itertools
import os
import pickle
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from typing import Any

from disco.error import DataError
from disco.failure import short_repr
from disco.gcpause import paused

#: Records read (and checked) at a time, at most.
BATCH = 16384
#: A batch of at least ``SAMPLE_MIN`` records is sized from every ``SAMPLE_STEP``-th one.
SAMPLE_MIN = 1024
SAMPLE_STEP = 64
#: Records per pickle in a spilled run (one ``pickle.load`` gives that many back).
RUN_BLOCK = 4096
#: Estimated bytes per record on top of its key and value: the tuple and a list slot.
RECORD_OVERHEAD = sys.getsizeof((1, 2)) + 8
SPILL_PICKLE_PROTOCOL = pickle.HIGHEST_PROTOCOL

_first = itemgetter(0)
_second = itemgetter(1)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([%bkKmMgGtTpPeE]?)\s*$")
_UNITS = {"b": 1, "": 1024, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_UNITS.update({"p": 1024**5, "e": 1024**6})


def buffer_bytes(sort_buffer_size: str | int) -> int:
    """``sort_buffer_size`` in bytes, read as GNU sort reads ``-S``: a number with an
    optional suffix ``%`` (of the physical memory), ``b``, ``K`` (the default), ``M``,
    ``G``, ``T``, ``P`` or ``E``; ``DataError`` for anything else."""
    m = _SIZE.match(str(sort_buffer_size))
    if not m:
        raise DataError("Invalid sort_buffer_size %r" % (sort_buffer_size,), "sort_buffer_size")
    number, unit = float(m.group(1)), m.group(2)
    if unit == "%":
        if number > 100:
            raise DataError("Invalid sort_buffer_size %r" % (sort_buffer_size,), "sort_buffer_size")
        return int(physical_memory() * number / 100)
    return int(number * _UNITS[unit.lower()])


def physical_memory() -> int:
    """Bytes of physical memory (4 GiB when the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def key_kind(key: Any) -> type:
    """The kind of keys a sort of records starting with ``key`` accepts.

    ``bytes`` keys sort in unsigned byte order (16.5); ``str`` keys sort by their UTF-8
    bytes, which is code-point order, and come back as ``str``.  Any other key is
    refused here, at the first record, with the way out (0.5's rule of "bytes only"
    came from Python 2, where ``str`` was bytes).
    """
    if isinstance(key, (bytes, str)):
        return bytes if isinstance(key, bytes) else str
    raise ValueError(
        "Keys must be bytes or str for external sort (sort=True), not %s (key %s): "
        "yield str or bytes keys (for numbers, a zero-padded text such as '%%010d' %% n "
        "keeps numeric order), or leave sort off and sort the records in the function "
        "that reads them" % (type(key).__name__, short_repr(key, 80)),
        key,
    )


def checked_key(key: Any, kind: type) -> Any:
    """``key`` as a plain ``kind`` object; ``ValueError`` for a key of another kind or
    with a 0x00 or 0xFF byte (the bytes 16.5's sort file cannot hold)."""
    if not isinstance(key, kind):
        raise ValueError(
            "Keys of an external sort (sort=True) must be all bytes or all str: "
            "the first key was %s, not %s (key %s); yield keys of one type"
            % (kind.__name__, type(key).__name__, short_repr(key, 80)),
            key,
        )
    if kind is str:
        plain: Any = key.encode("utf-8", "surrogatepass")
        bad = b"\x00" in plain
        plain = plain.decode("utf-8", "surrogatepass")
    else:
        plain = bytes(key)
        bad = b"\xff" in plain or b"\x00" in plain
    if bad:
        raise ValueError("Cannot sort key with 0xFF or 0x00 bytes", key)
    return plain


def _checked_batch(batch: list[Any], kind: type) -> list[Any]:
    """``batch`` as a list of ``(key, value)`` tuples with checked keys (errors as
    ``checked_key`` and tuple unpacking give them)."""
    if set(map(type, batch)) == {tuple} and set(map(len, batch)) == {2}:
        keys = list(map(_first, batch))
        if set(map(type, keys)) == {kind}:
            if kind is bytes:
                joined = b"".join(keys)
                clean = b"\x00" not in joined and b"\xff" not in joined
            else:
                clean = "\x00" not in "".join(keys)
            if clean:
                return batch
    return [(checked_key(k, kind), v) for k, v in batch]


def _estimated_size(batch: list[tuple[Any, Any]]) -> int:
    """Bytes of ``batch``'s records, from every ``SAMPLE_STEP``-th record of a large
    batch (the estimate only decides when to spill)."""
    getsizeof = sys.getsizeof
    sample = batch[::SAMPLE_STEP] if len(batch) >= SAMPLE_MIN else batch
    size = sum(map(getsizeof, map(_first, sample))) + sum(map(getsizeof, map(_second, sample)))
    return size * len(batch) // max(1, len(sample)) + RECORD_OVERHEAD * len(batch)


class RecordSort:
    """One sort: ``add`` batches of records, then iterate the sorted records once."""

    def __init__(self, filename: str, buffer_size: int) -> None:
        self.filename = filename
        self.buffer_size = buffer_size
        self.kind: type | None = None
        self.records: list[tuple[Any, Any]] = []
        self.size = 0  # estimated bytes of ``records``
        self.total = 0  # estimated bytes of every record added
        self.runs: list[str] = []

    def add_all(self, input: Iterable[Any]) -> None:
        """Take every record of ``input``; the first one fixes the key kind.

        The cyclic garbage collector is paused meanwhile (``disco.gcpause.paused``): the
        records kept here are new container objects (tuples) by the hundred thousand, and
        each young collection walked the lists being filled with them again, about 10 %
        of the reading's CPU for 500 k records, to free nothing.  They are aged into the
        oldest generation at the end, without a walk, or, in a task forked from the
        zygote (which froze its objects), frozen with those
        (``gcpause.keep_young_objects``)."""
        with paused(keep=True):
            self._add_all(input)

    def _add_all(self, input: Iterable[Any]) -> None:
        it = iter(input)
        for k, v in it:
            self.kind = key_kind(k)
            self._add([(checked_key(k, self.kind), v)])
            break
        if self.kind is None:
            return
        count = 1
        while True:
            # at most a quarter of the buffer at a time, by the records' average size
            average = max(1, self.total // count)
            batch = list(itertools.islice(it, max(1, min(BATCH, self.buffer_size // 4 // average))))
            if not batch:
                return
            count += len(batch)
            self._add(_checked_batch(batch, self.kind))

    def _add(self, batch: list[tuple[Any, Any]]) -> None:
        size = _estimated_size(batch)
        self.records.extend(batch)
        self.size += size
        self.total += size
        if self.size > self.buffer_size:
            self._spill()

    def _spill(self) -> None:
        """Write the records held so far, sorted, as the next run file."""
        self.records.sort(key=_first)
        path = "%s.run%d" % (self.filename, len(self.runs))
        self.runs.append(path)
        records = self.records
        with open(path, "wb") as f:
            for i in range(0, len(records), RUN_BLOCK):
                pickle.dump(records[i : i + RUN_BLOCK], f, SPILL_PICKLE_PROTOCOL)
        self.records, self.size = [], 0

    def sorted(self) -> Iterable[tuple[Any, Any]]:
        """The records in key order, equal keys in input order; run files removed at
        the end (or when the iterator is closed)."""
        self.records.sort(key=_first)
        records, self.records = self.records, []
        if not self.runs:
            # the list itself (iterated with no generator frame per record): whoever
            # iterates it decides when it is freed (``LazyRecords`` keeps it)
            return records
        return self._merged(records)

    def _merged(self, last: list[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
        try:
            runs = [_read_run(path) for path in self.runs]
            yield from heapq.merge(*runs, last, key=_first)
        finally:
            self.remove_runs()

    def remove_runs(self) -> None:
        for path in self.runs:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        self.runs = []


def _read_run(path: str) -> Iterator[tuple[Any, Any]]:
    with open(path, "rb") as f:
        load = pickle.load
        while True:
            try:
                block = load(f)
            except EOFError:
                return
            yield from block


class LazyRecords:
    """An iterator over the records ``make()`` returns, called at the first ``iter()`` or
    ``next()`` (the laziness of a generator); ``iter()`` gives that iterator itself, so a
    ``for`` loop runs over it with no Python frame per record."""

    def __init__(self, make: Callable[[], Iterable[Any]]) -> None:
        self._make: Callable[[], Iterable[Any]] | None = make
        self._records: Iterator[Any] | None = None
        # What ``make()`` gave, kept with this object: a list of sorted records is freed
        # when this object is, not by its iterator's end (a task's last records are
        # left to the process's exit: ``disco.worker.taskrun.leave_to_exit``).
        self._source: Iterable[Any] | None = None

    def _started(self) -> Iterator[Any]:
        if self._records is None:
            make, self._make = self._make, None
            if make is None:  # ``make`` failed: nothing more to give
                return iter(())
            self._source = make()
            self._records = iter(self._source)
        return self._records

    def __iter__(self) -> Iterator[Any]:
        return self._started()

    def __next__(self) -> Any:
        return next(self._started())

    def close(self) -> None:
        """Stop early: spilled runs are removed."""
        records, self._records, self._make = self._records, iter(()), None
        self._source = None
        close = getattr(records, "close", None)
        if close is not None:
            close()
