"""The DDFS client names the library needs (library.md 7.3, 4; ddfs.md).

DDFS itself arrives in a later release.  This module gives the pure helpers (tag names,
blob names) and a ``DDFS`` class whose server operations raise a clear ``DiscoError``
saying DDFS is not available yet.
"""

from __future__ import annotations

import os
import re
from typing import Any, NoReturn

from disco.error import DiscoError

__all__ = [
    "DDFS",
    "InvalidTag",
    "canonizetag",
    "ddfs_unavailable",
    "istag",
    "tagname",
    "unsafe_re",
]

unsafe_re = re.compile(r"[^A-Za-z0-9_\-@:]")


class InvalidTag(Exception):
    """A string that is not a DDFS tag name or ``tag://`` URL."""


def ddfs_unavailable(method: str) -> DiscoError:
    """The error every DDFS server operation raises until DDFS exists."""
    return DiscoError(
        "DDFS is not available yet: %s needs the DDFS server (not implemented in this release)"
        % method
    )


def istag(tag: Any) -> bool:
    """``tag://...``, or a string with neither ``://`` nor ``/`` that is not ``-`` (7.3).

    [Quirk] so a bare file name such as ``input.csv`` counts as a tag.
    """
    if not isinstance(tag, str):
        return False
    if tag.startswith("tag://"):
        return True
    return "://" not in tag and "/" not in tag and tag != "-"


def canonizetag(tag: str) -> str:
    """``name`` or ``tag://name`` -> ``tag://name``."""
    if isinstance(tag, str):
        if tag.startswith("tag://"):
            return tag
        if istag(tag):
            return "tag://%s" % tag
    raise InvalidTag("Invalid tag: %r" % (tag,))


def tagname(tag: Any) -> str:
    """``tag://[host/]name`` or ``name`` (or a list whose first item is one) -> ``name``."""
    if isinstance(tag, (list, tuple)):
        if tag:
            return tagname(tag[0])
    elif isinstance(tag, str):
        if tag.startswith("tag://"):
            return tag[len("tag://") :].rsplit("/", 1)[-1]
        if istag(tag):
            return tag
    raise InvalidTag("Invalid tag: %r" % (tag,))


class DDFS:
    """DDFS client (0.5 names).  Server operations raise ``ddfs_unavailable``."""

    def __init__(self, master: str | None = None, proxy: str | None = None, settings: Any = None):
        from disco.settings import DiscoSettings

        self.settings = settings if settings is not None else DiscoSettings()
        self.master = master or self.settings["DISCO_MASTER"]
        self.proxy = proxy if proxy is not None else self.settings["DISCO_PROXY"]

    @staticmethod
    def safe_name(name: str) -> str:
        """Characters outside ``[A-Za-z0-9_\\-@:]`` become ``_``."""
        return unsafe_re.sub("_", name)

    @staticmethod
    def blob_name(url: str) -> str:
        """The blob name of a blob URL: its file name up to the ``$`` timestamp suffix."""
        return os.path.basename(url.rstrip("/")).split("$", 1)[0]

    def _unavailable(self, method: str) -> NoReturn:
        raise ddfs_unavailable(method)

    def attrs(self, tag: str, token: str | None = None) -> Any:
        self._unavailable("attrs")

    def blobs(self, tag: str, ignore_missing: bool = True, token: str | None = None) -> Any:
        self._unavailable("blobs")

    def chunk(self, tag: str, urls: Any, **kwargs: Any) -> Any:
        self._unavailable("chunk")

    def delattr(self, tag: str, attr: str, token: str | None = None) -> Any:
        self._unavailable("delattr")

    def delete(self, tag: str, token: str | None = None) -> Any:
        self._unavailable("delete")

    def exists(self, tag: str) -> Any:
        self._unavailable("exists")

    def findtags(
        self, tags: Any = (), ignore_missing: bool = True, token: str | None = None
    ) -> Any:
        self._unavailable("findtags")

    def get(self, tag: str, token: str | None = None) -> Any:
        self._unavailable("get")

    def getattr(self, tag: str, attr: str, token: str | None = None) -> Any:
        self._unavailable("getattr")

    def list(self, prefix: str = "") -> Any:
        self._unavailable("list")

    def pull(self, tag: str, blobfilter: Any = None, token: str | None = None) -> Any:
        self._unavailable("pull")

    def push(self, tag: str, files: Any, replicas: Any = None, **kwargs: Any) -> Any:
        self._unavailable("push")

    def put(self, tag: str, urls: Any, token: str | None = None) -> Any:
        self._unavailable("put")

    def setattr(self, tag: str, attr: str, val: Any, token: str | None = None) -> Any:
        self._unavailable("setattr")

    def tag(self, tag: str, urls: Any, token: str | None = None, **kwargs: Any) -> Any:
        self._unavailable("tag")

    def tags(self, tag: str) -> Any:
        self._unavailable("tags")

    def urls(self, tag: str, token: str | None = None) -> Any:
        self._unavailable("urls")

    def walk(
        self, tag: str, ignore_missing: bool = True, tagpath: Any = (), token: Any = None
    ) -> Any:
        self._unavailable("walk")
