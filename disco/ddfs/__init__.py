"""DDFS, the Disco Distributed Filesystem: the client names of Disco 0.5 (ddfs.md 3).

``DDFS`` talks to a master's ``/ddfs/...`` endpoints and to the nodes' blob servers;
the module-level helpers shape tag names and ``tag://`` URLs.  The server parts (tag
store, blob servers, GC) live in submodules that the client never imports, and ``DDFS``
(``disco.ddfs.client``, with the HTTP client) is imported at its first use, so that the
master importing its server parts does not import the client (issue 13, tiny job).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from disco.ddfs.tagurl import (
    InvalidTag,
    canonizetag,
    canonizetags,
    istag,
    relativizetag,
    relativizetags,
    tagname,
    unsafe_re,
)

if TYPE_CHECKING:
    from disco.ddfs.client import DDFS


def __getattr__(name: str) -> Any:
    if name == "DDFS":
        from disco.ddfs.client import DDFS

        return DDFS
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


__all__ = [
    "DDFS",
    "InvalidTag",
    "canonizetag",
    "canonizetags",
    "istag",
    "relativizetag",
    "relativizetags",
    "tagname",
    "unsafe_re",
]
