"""Small Python 3 helpers that 0.5 kept in ``disco.compat`` (library.md sections 1, 8.2).

Owns the bytes/str conversions, the pickle shorthands, ``persistent_hash`` (used by
``default_partition``) and ``sort_cmd`` (the external ``sort`` command line, 16.5).
Every public name of 0.5's module is here with the meaning 0.5 gave it on Python 3
(``StringIO``, ``BytesIO``, ``file``, ``socket_server``, ``urlencode``, ``httplib``,
``http_server``, ``zip_longest``, ...), so that programs importing them run unchanged.
"""

from __future__ import annotations

import pickle
from io import BytesIO, StringIO
from io import FileIO as file
from itertools import zip_longest
from pickle import UnpicklingError
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

__all__ = [
    "BytesIO",
    "StringIO",
    "UnpicklingError",
    "basestring",
    "bytes_of_int",
    "bytes_to_str",
    "file",
    "force_ascii",
    "force_utf8",
    "http_server",
    "httplib",
    "int_of_byte",
    "integer_types",
    "iteritems",
    "iterkeys",
    "itervalues",
    "md5",
    "persistent_hash",
    "pickle",
    "pickle_dump",
    "pickle_dumps",
    "pickle_load",
    "pickle_loads",
    "socket_server",
    "sort_cmd",
    "str_to_bytes",
    "unicode",
    "urlencode",
    "zip_longest",
]

if TYPE_CHECKING:
    import http.client as httplib
    import http.server as http_server
    import socketserver as socket_server
    from hashlib import md5

# httplib, http_server and socket_server (0.5's aliases of http.client, http.server and
# socketserver) are imported on first use: a master or a job that does not use them does
# not load them (http.client brings ssl and email: 3 MB that every forked task's page
# tables would carry).
_LAZY_MODULES = {
    "httplib": "http.client",
    "http_server": "http.server",
    "socket_server": "socketserver",
}


try:  # the interpreter's own md5: the digest of ``hashlib.md5`` without importing
    # ``hashlib`` (OpenSSL's libcrypto: mapped in the memory every task is forked from,
    # docs/decisions.md "A lean fork base")
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import md5 as _md5


def __getattr__(name: str) -> Any:
    if name == "md5":  # ``hashlib.md5``; ``hashlib`` (OpenSSL's libcrypto) only when asked
        from hashlib import md5

        globals()["md5"] = md5
        return md5
    if name in _LAZY_MODULES:
        import importlib

        module = importlib.import_module(_LAZY_MODULES[name])
        globals()[name] = module
        return module
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


basestring = str
unicode = str
integer_types = (int,)


def bytes_of_int(i: int) -> bytes:
    """The one byte whose value is ``i`` (0..255)."""
    return bytes((i,))


def int_of_byte(b: int | bytes) -> int:
    """The value of one byte: an item of a ``bytes`` is already an ``int`` on Python 3."""
    if isinstance(b, (bytes, bytearray)):
        if len(b) != 1:
            raise ValueError("int_of_byte takes one byte, got %d" % len(b))
        return b[0]
    return int(b)


def force_utf8(string: str) -> str:
    """Python 2 turned text into UTF-8 bytes here; Python 3 text is already Unicode."""
    return string


def force_ascii(string: str) -> str:
    """Python 2 encoded text to ASCII here; on Python 3, as in 0.5, text is returned as is."""
    return string


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
    return int(_md5(data).hexdigest(), 16)


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
