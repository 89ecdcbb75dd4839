"""DDFS, the Disco Distributed Filesystem: the client names of Disco 0.5 (ddfs.md 3).

``DDFS`` talks to a master's ``/ddfs/...`` endpoints and to the nodes' blob servers;
the module-level helpers shape tag names and ``tag://`` URLs.  The server parts (tag
store, blob servers, GC) live in submodules that the client never imports.
"""

from __future__ import annotations

from disco.ddfs.client import DDFS
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
