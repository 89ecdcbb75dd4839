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
"""

from __future__ import annotations

import struct
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
