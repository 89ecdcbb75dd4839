"""Netstring dictionaries for external programs' parameters (library.md 10.5).

A dict is ``"<len(k)> <k> <len(v)> <v>\\n"`` per item, the record format of 16.2:
the items are written by ``disco.fileutils.netstring_record`` and read by
``disco.worker.task_io.old_netstr_reader``, the one netstring codec.
``encode_netstring_fd`` prefixes the total length and a newline.  Everything is bytes
(str is UTF-8 encoded).
"""

from __future__ import annotations

import io
from typing import Any

from disco.error import DataError
from disco.fileutils import netstring_record


class NetStringError(Exception):
    """A netstring block could not be parsed."""


def encode_netstring_str(d: dict[Any, Any]) -> bytes:
    return b"".join(netstring_record(k, v) for k, v in d.items())


def encode_netstring_fd(d: dict[Any, Any]) -> bytes:
    msg = encode_netstring_str(d)
    return b"%d\n%s" % (len(msg), msg)


def decode_netstring_str(nstr: bytes) -> dict[str, str]:
    """Parse a block of items (no length prefix) into a dict of str."""
    from disco.worker.task_io import old_netstr_reader

    try:
        return dict(old_netstr_reader(io.BytesIO(nstr), len(nstr), "netstring"))
    except DataError as e:
        raise NetStringError(e.msg) from None


def decode_netstring_fd(fd: Any) -> dict[str, str]:
    """Read ``"<len>\\n"`` and a block from a binary file."""
    line = fd.readline()
    try:
        size = int(line)
    except ValueError:
        raise NetStringError("Invalid netstring block length %r" % line[:32])
    data = fd.read(size)
    if len(data) < size:
        raise NetStringError("Truncated netstring block")
    return decode_netstring_str(data)
