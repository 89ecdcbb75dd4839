"""Small Python 3 helpers that 0.5 kept in ``disco.compat`` (library.md sections 1, 8.2).

Owns the bytes/str conversions, the pickle shorthands, ``persistent_hash`` (used by
``default_partition``) and ``sort_cmd`` (the external ``sort`` command line, 16.5).
"""

from __future__ import annotations

import hashlib
import io
import pickle
from typing import Any

basestring = str
unicode = str
integer_types = (int,)
file = io.IOBase


def bytes_to_str(data: bytes | str, encoding: str = "utf-8") -> str:
    """Decode ``bytes`` (UTF-8, undecodable bytes replaced); ``str`` is returned as is."""
    if isinstance(data, str):
        return data
    return bytes(data).decode(encoding, "replace")


def str_to_bytes(data: str | bytes, encoding: str = "utf-8") -> bytes:
    """Encode ``str`` as UTF-8; ``bytes`` (and bytearray) are returned as bytes."""
    if isinstance(data, str):
        return data.encode(encoding)
    return bytes(data)


def iteritems(d: dict) -> Any:
    return iter(d.items())


def iterkeys(d: dict) -> Any:
    return iter(d.keys())


def itervalues(d: dict) -> Any:
    return iter(d.values())


def pickle_loads(data: bytes) -> Any:
    return pickle.loads(data)


def pickle_dumps(obj: Any, protocol: int | None = None) -> bytes:
    return pickle.dumps(obj, protocol)


def pickle_load(fd: Any) -> Any:
    return pickle.load(fd)


def pickle_dump(obj: Any, fd: Any, protocol: int | None = None) -> None:
    pickle.dump(obj, fd, protocol)


def persistent_hash(obj: Any) -> int:
    """A hash that is the same in every process (never Python's randomized ``hash``).

    ``str`` and equal UTF-8 ``bytes`` hash alike: ``int(md5(bytes).hexdigest(), 16)``
    (library.md 8.2).  Any other key hashes the UTF-8 of its ``repr`` (21.2).
    """
    if isinstance(obj, str):
        data = obj.encode("utf-8")
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        data = bytes(obj)
    else:
        data = repr(obj).encode("utf-8")
    return int(hashlib.md5(data).hexdigest(), 16)


def sort_cmd(filename: str, sort_buffer_size: str | int) -> tuple[list[bytes], dict[str, str]]:
    """The external sort of library.md 16.5 as ``(argv, extra_env)``.

    The field separator is the single byte ``0xFF``; argv is bytes so that it is not
    UTF-8 encoded into two bytes.  ``LC_ALL=C`` makes the order unsigned byte order.
    """
    path = filename.encode() if isinstance(filename, str) else filename
    argv = [
        b"sort",
        b"-z",
        b"-t",
        b"\xff",
        b"-k",
        b"1,1",
        b"-T",
        b".",
        b"-S",
        str(sort_buffer_size).encode(),
        b"-o",
        path,
        path,
    ]
    return argv, {"LC_ALL": "C"}
