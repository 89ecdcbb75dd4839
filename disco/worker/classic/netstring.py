"""Netstring dictionaries for external programs' parameters (library.md 10.5).

A dict is ``"<len(k)> <k> <len(v)> <v>\\n"`` per item; ``encode_netstring_fd`` prefixes
the total length and a newline.  Everything is bytes (str is UTF-8 encoded).
"""

from __future__ import annotations

from typing import Any

from disco.compat import str_to_bytes


class NetStringError(Exception):
    """A netstring block could not be parsed."""


def _b(x: Any) -> bytes:
    return x if isinstance(x, bytes) else str_to_bytes(str(x))


def encode_netstring_str(d: dict[Any, Any]) -> bytes:
    out = []
    for k, v in d.items():
        kb, vb = _b(k), _b(v)
        out.append(b"%d %s %d %s\n" % (len(kb), kb, len(vb), vb))
    return b"".join(out)


def encode_netstring_fd(d: dict[Any, Any]) -> bytes:
    msg = encode_netstring_str(d)
    return b"%d\n%s" % (len(msg), msg)


def _field(nstr: bytes, pos: int) -> tuple[bytes, int]:
    space = nstr.find(b" ", pos)
    if space < 0 or not nstr[pos:space].isdigit():
        raise NetStringError("Invalid length at byte %d" % pos)
    end = space + 1 + int(nstr[pos:space])
    if end + 1 > len(nstr):
        raise NetStringError("Truncated netstring at byte %d" % pos)
    return nstr[space + 1 : end], end + 1  # skip the separator after the field


def decode_netstring_str(nstr: bytes) -> dict[str, str]:
    """Parse a block of items (no length prefix) into a dict of str."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(nstr):
        key, pos = _field(nstr, pos)
        value, pos = _field(nstr, pos)
        if nstr[pos - 1 : pos] != b"\n":
            raise NetStringError("Missing newline after an item at byte %d" % pos)
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return out


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
