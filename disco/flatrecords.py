"""Hunks of fixed-shape flat records read without an ``Unpickler`` step per record.

The record writer (``disco.fileutils.DiscoOutputStream_v1.add``) pickles a flat
``(key, value)`` record with a ``Pickler`` in fast mode: protocol 4, no memo.  For
``bytes`` keys and values shorter than 256 bytes, or ints 0..255, such a pickle has a
fixed shape::

    \x80\x04  \x95 <frame length, 8 bytes LE>  <key op>  <value op>  \x86  .

where an op is ``C <len> <bytes>`` (SHORT_BINBYTES) or ``K <byte>`` (BININT1).  When every
record of a hunk has the same sizes (TeraSort-like records: fixed-size keys and
payloads), the hunk is a run of equal-sized pickles that one ``struct`` format reads
(``uniform_records``); any other hunk is left to the unpickler
(``disco.worker.task_io.hunk_records``).  tests/lib/test_flat_records.py checks it
against ``pickle``.

The writer's side is ``flat_pickles``: a batch of records of one such shape (``bytes``
keys and values, each side of one length under 256) pickled as one list by a fast-mode
``Pickler`` (one C loop), checked op byte by op byte to hold exactly those records, and
turned into the records' own pickles with one ``struct`` unpack and one ``join`` (no
``Pickler.dump`` per record: ``DiscoOutputStream_v1.add_all``).
"""

from __future__ import annotations

import functools
import io
import pickle
import struct
from operator import is_, itemgetter
from typing import Any

_PROTO = b"\x80\x04\x95"
TAIL = b"\x86."
#: The smallest such pickle: 11 bytes of header, two 2-byte ops, the tail.
OVERHEAD = 17
_SHORT = 256  # SHORT_BINBYTES holds a length < 256, BININT1 an int < 256


#: op byte -> struct code of its data, for the ops ``uniform_records`` reads.
_READ_OPS = {ord("C"): "s", ord("K"): "B"}


def uniform_records(data: bytes) -> list[Any] | None:
    """The records of a hunk's payload whose pickles all have one shape, read by one
    ``struct`` format (``iter_unpack``: no ``Unpickler`` step per record); ``None`` when
    they do not (the caller unpickles them).

    The shape is the one ``flat_pickles`` makes, for records of fixed-size ``bytes``
    (SHORT_BINBYTES) or small int (BININT1) keys and values: the first pickle gives the
    record size and the positions of its op bytes and lengths, and every record must
    have those same bytes at those positions (checked a position at a time over the
    whole hunk with one slice each).  Such a record unpickles to exactly the tuple the
    format gives (its two objects at fixed offsets)."""
    if len(data) < OVERHEAD or data[:3] != _PROTO:
        return None
    size = 11 + int.from_bytes(data[3:11], "little")
    count, rest = divmod(len(data), size)
    if rest or size > 2 * _SHORT + 11 + 6:
        return None
    fmt, fixed, pos = ["<11x"], list(range(11)), 11
    for _side in range(2):
        if pos + 2 > size:  # a length that runs past the record (a damaged hunk)
            return None
        code = _READ_OPS.get(data[pos])
        if code is None:
            return None
        if code == "s":
            length = data[pos + 1]
            fmt.append("2x%ds" % length)
            fixed += [pos, pos + 1]
            pos += 2 + length
        else:
            fmt.append("xB")
            fixed.append(pos)
            pos += 2
    if pos + 2 != size or data[pos : pos + 2] != TAIL:
        return None
    fixed += [pos, pos + 1]
    for at in fixed:  # every record has the first one's bytes here
        if data[at::size] != data[at : at + 1] * count:
            return None
    fmt.append("2x")
    return list(struct.Struct("".join(fmt)).iter_unpack(data))


#: Records pickled as one list by ``flat_pickles``, at most (one ``MARK ... APPENDS`` run
#: of the pickler's list batches: its ``BATCHSIZE`` is 1000).
PICKLE_BATCH = 1000
_LIST_HEAD = b"\x80\x03]("  # protocol 3 (no frames), EMPTY_LIST, MARK
_LIST_TAIL = b"e."  # APPENDS, STOP
_first = itemgetter(0)
_second = itemgetter(1)


def _list_pickle(batch: list[Any]) -> bytes | None:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, 3)
    pickler.fast = True  # no memo: the objects' own ops only
    try:
        pickler.dump(batch)
    except Exception:  # whatever it is, the per-record path meets it again
        return None
    return out.getvalue()


def flat_pickles(batch: list[Any]) -> tuple[bytes, int] | None:
    """The pickles ``DiscoOutputStream_v1.add(key, value)`` writes for each record of
    ``batch`` (2 to ``PICKLE_BATCH`` ``(key, value)`` tuples), concatenated, and the size
    of each; ``None`` unless every record is a tuple of a ``bytes`` key of one length and
    a ``bytes`` value of one length, both under 256, and no key is its value.

    The batch is pickled as one list (protocol 3, fast mode: no frames, no memo), which
    for such records is ``](``, then per record ``C <len> <key> C <len> <value> \x86``
    (SHORT_BINBYTES twice, TUPLE2), then ``e.``.  The first record gives the lengths; the
    op bytes and lengths are checked at their place in every record (one slice each):
    read from the start, they leave no other way to parse the list, and only an exact
    ``tuple`` of two exact ``bytes`` pickles so.  Each record's own pickle is then
    protocol 4's ``\x80\x04`` + FRAME of its length + those ops + STOP, which is what a
    fast-mode ``Pickler.dump((key, value))`` writes (tests/lib/test_flat_records.py)."""
    count = len(batch)
    if not 2 <= count <= PICKLE_BATCH:
        return None
    data = _list_pickle(batch)
    if data is None or not data.startswith(_LIST_HEAD) or not data.endswith(_LIST_TAIL):
        return None
    body = len(data) - len(_LIST_HEAD) - len(_LIST_TAIL)
    start = len(_LIST_HEAD)
    if body < 5 * count or start + 3 + data[start + 1] >= len(data):
        return None
    if data[start] != 0x43 or data[start + 2 + data[start + 1]] != 0x43:  # "C"
        return None
    key_len = data[start + 1]
    value_len = data[start + 3 + key_len]
    item = 5 + key_len + value_len
    if body != item * count:
        return None
    ops = {0: 0x43, 1: key_len, 2 + key_len: 0x43, 3 + key_len: value_len, item - 1: 0x86}
    end = start + body
    for at, op in ops.items():
        if data[start + at : end : item] != bytes((op,)) * count:
            return None
    if key_len == value_len and any(map(is_, map(_first, batch), map(_second, batch))):
        return None  # a record (k, k): ``add`` pickles it with the memo
    # each record's ops cut out as one bytes object (one C call), then joined with what
    # ends one record's pickle and starts the next one's in between
    items = _items_format(item, count).unpack_from(data, start)
    head = b"\x80\x04\x95" + (item + 1).to_bytes(8, "little")  # PROTO 4, FRAME
    return head + (b"." + head).join(items) + b".", len(head) + item + 1


@functools.lru_cache(maxsize=16)
def _items_format(item: int, count: int) -> struct.Struct:
    return struct.Struct("%ds" % item * count)
