"""Pickles of flat ``(key, value)`` records made a batch at a time (the record writer).

``DiscoOutputStream_v1.add`` pickles a flat record (``disco.fileutils.flat_pair``) with a
``Pickler`` in fast mode: protocol 4, no memo.  For the commonest records, short
``bytes`` or ``str`` keys and values (or small ints), those bytes have a fixed shape::

    \\x80\\x04  \\x95 <frame length, 8 bytes LE>  <key op>  <value op>  \\x86  .

where an op is ``C <len> <bytes>`` (SHORT_BINBYTES), ``\\x8c <len> <UTF-8>``
(SHORT_BINUNICODE, ``surrogatepass`` as pickle encodes) or ``K <byte>`` (BININT1, an int
0..255).  ``flat_pickles`` builds the pickles of a whole batch with C loops (``map``,
``zip``, one ``join``) instead of one ``Pickler.dump`` call per record; a batch it cannot
do that way (another type, a longer object, a bool) gives ``None`` and the writer pickles
it record by record as before.  The bytes are the same either way
(tests/lib/test_flat_records.py checks them against the pickler).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from itertools import repeat
from operator import add
from typing import Any

#: The pickle of a record around its two ops: header before, tail after.
_PROTO = b"\x80\x04\x95"
TAIL = b"\x86."
#: Bytes of a record's pickle besides its ops' data: 11 of header, 2 + 2 of op heads, 2.
OVERHEAD = 17
_SHORT = 256  # SHORT_BINBYTES / SHORT_BINUNICODE / BININT1 hold a length (value) < 256

_BYTES_HEADS = [b"C" + bytes([n]) for n in range(_SHORT)]
_STR_HEADS = [b"\x8c" + bytes([n]) for n in range(_SHORT)]
_SMALL_INTS = [b"K" + bytes([n]) for n in range(_SHORT)]
#: frame header for a record whose two ops hold ``n`` bytes of data (frame: ops + 2).
_FRAMES = [_PROTO + (n + 6).to_bytes(8, "little") for n in range(2 * _SHORT)]


def _side(objects: Sequence[object]) -> tuple[Any, list[Any] | None, Any] | None:
    """(op heads, op data, data lengths) of one side of a batch (all keys, or all values)
    when every object is of one supported type, else ``None``.  Heads and lengths are a
    single ``bytes`` / ``int`` when the same for every object (a list otherwise); the data
    is ``None`` for small ints (their head is the whole op)."""
    kinds = set(map(type, objects))
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    if kind is bytes:
        data: Any = objects
        heads = _BYTES_HEADS
    elif kind is str:
        data = list(map(str.encode, objects, repeat("utf-8"), repeat("surrogatepass")))  # type: ignore[arg-type]
        heads = _STR_HEADS
    elif kind is int:
        if min(objects) < 0 or max(objects) >= _SHORT:  # type: ignore[type-var]
            return None
        return list(map(_SMALL_INTS.__getitem__, objects)), None, 0  # type: ignore[arg-type]
    else:
        return None
    lengths = list(map(len, data))
    if lengths.count(lengths[0]) == len(lengths):  # all of one length
        return (heads[lengths[0]], data, lengths[0]) if lengths[0] < _SHORT else None
    if max(lengths) >= _SHORT:
        return None
    return list(map(heads.__getitem__, lengths)), data, lengths


def flat_pickles(
    keys: Sequence[object], values: Sequence[object]
) -> tuple[bytes, list[int]] | None:
    """The concatenated fast-mode pickles of the records ``zip(keys, values)`` and the
    size of each, or ``None`` when the batch is not of the shape this module makes."""
    n = len(keys)
    if not n:
        return b"", []
    k = _side(keys)
    v = _side(values) if k is not None else None
    if k is None or v is None:
        return None
    k_heads, k_data, k_lengths = k
    v_heads, v_data, v_lengths = v
    if isinstance(k_lengths, int) and isinstance(v_lengths, int):
        frames: Any = _FRAMES[k_lengths + v_lengths]
        sizes = [k_lengths + v_lengths + OVERHEAD] * n
    else:
        data_sizes = list(
            map(
                add,
                repeat(k_lengths, n) if isinstance(k_lengths, int) else k_lengths,
                repeat(v_lengths, n) if isinstance(v_lengths, int) else v_lengths,
            )
        )
        frames = list(map(_FRAMES.__getitem__, data_sizes))
        sizes = list(map(add, data_sizes, repeat(OVERHEAD, n)))
    # one record's pieces: frame, key head, [key data], value head, [value data], tail;
    # a template repeated n times, the varying pieces put in by slice assignment
    columns = [frames, k_heads] + ([k_data] if k_data is not None else [])
    columns += [v_heads] + ([v_data] if v_data is not None else []) + [TAIL]
    width = len(columns)
    pieces = [c if isinstance(c, bytes) else None for c in columns] * n
    for i, column in enumerate(columns):
        if not isinstance(column, bytes):
            pieces[i::width] = column
    return b"".join(pieces), sizes


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
