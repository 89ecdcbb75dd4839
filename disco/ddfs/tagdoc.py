"""The tag document and the pure rules over it (ddfs.md 1.5, 1.9, 1.10, 2.4.6-2.4.11).

``TagDoc`` reads stored documents leniently and always writes all seven keys in order;
``served()`` is what ``GET /ddfs/tag/NAME`` returns.  ``append_urls`` is the POST merge of
1.9, ``can_write`` / ``read_privilege`` the token table of 1.10.  ``INTERNAL`` is the
master's own super-token (results, ``+deleted``): it always passes and is never stored.
"""

from __future__ import annotations

import json
import time
from dataclasses import field, replace
from typing import Any, Literal

from disco.ddfs.names import Timestamp, entry_name, is_url_list, object_id, parse_object_id
from disco.lazydataclass import lazy_dataclass


class _Internal:
    def __repr__(self) -> str:
        return "INTERNAL"


INTERNAL: Any = _Internal()  # the master's super-token
Token = str | None  # or INTERNAL

READ_TOKEN = "ddfs:read-token"
WRITE_TOKEN = "ddfs:write-token"
URLS = "ddfs:urls"
MAX_ATTR_NAME = 1024
MAX_ATTR_VALUE = 4096
MAX_ATTRS = 1000


class CorruptTag(ValueError):
    """A stored tag document that cannot be decoded."""


def last_modified(t: float) -> str:
    """``YYYY/MM/DD HH:MM:SS`` in the master's local time (1.5)."""
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t))


@lazy_dataclass(frozen=True)
class TagDoc:
    name: str
    ts: Timestamp
    last_modified: str
    read_token: str | None = None
    write_token: str | None = None
    urls: list[list[str]] = field(default_factory=list)
    user_data: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return object_id(self.name, self.ts)

    def stored(self) -> dict[str, Any]:
        return {
            "version": 1,
            "id": self.id,
            "last-modified": self.last_modified,
            "read-token": self.read_token,
            "write-token": self.write_token,
            "urls": self.urls,
            "user-data": self.user_data,
        }

    def served(self) -> dict[str, Any]:
        return {
            "version": 1,
            "id": self.id,
            "last-modified": self.last_modified,
            "urls": self.urls,
            "user-data": self.user_data,
        }

    def encode(self) -> bytes:
        return json.dumps(self.stored(), separators=(",", ":")).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> TagDoc:
        """A stored document; missing tokens are ``null``, missing user-data ``{}``."""
        try:
            obj = json.loads(data.decode("utf-8"))
            name, ts = parse_object_id(obj["id"], internal=True)
            urls = obj.get("urls", [])
            user = obj.get("user-data") or {}
            if not is_url_list(urls) or not isinstance(user, dict):
                raise ValueError("bad urls or user-data")
            return cls(
                name=name,
                ts=ts,
                last_modified=str(obj.get("last-modified", "")),
                read_token=obj.get("read-token"),
                write_token=obj.get("write-token"),
                urls=urls,
                user_data={str(k): str(v) for k, v in user.items()},
            )
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise CorruptTag("corrupt tag document: %s" % exc) from None

    def new_version(self, ts: Timestamp, now: float, **changes: Any) -> TagDoc:
        return replace(self, ts=ts, last_modified=last_modified(now), **changes)


def empty_tag(name: str, token: Token) -> TagDoc:
    """The starting point of a created (or re-created) tag: both tokens from the request."""
    stored = None if token is INTERNAL else token
    return TagDoc(name, Timestamp(0, 0, 0), "", stored, stored)


# -- authorization (1.10) -----------------------------------------------------------------
def can_write(doc: TagDoc | None, token: Token) -> bool:
    if doc is None or token is INTERNAL or doc.write_token is None:
        return True
    return token == doc.write_token


Privilege = Literal["denied", "read", "write"]


def read_privilege(doc: TagDoc, token: Token) -> Privilege:
    """The 1.10 read table, including the quirk that a tag with only a write token
    never grants the write privilege on reads."""
    if token is INTERNAL:
        return "write"
    r, w = doc.read_token, doc.write_token
    read_ok = r is None or token == r
    if read_ok:
        return "write" if (w is None or w == r) else "read"
    if r is not None and w is not None and token == w:
        return "write"
    return "denied"


# -- updates (1.9) ------------------------------------------------------------------------
def append_urls(old: list[list[str]], new: list[list[str]], update: bool) -> list[list[str]] | None:
    """The new ``urls`` of a POST, or ``None`` when nothing changes (no new version).

    Plain append: ``new + old``.  ``update``: entries whose name is already in ``old``
    (or earlier in ``new``) are dropped; accepted ones are prepended one by one, so they
    end up in reverse request order [quirk kept].
    """
    if not update:
        return (new + old) if new else None
    names = {n for n in (entry_name(e) for e in old) if n is not None}
    result = list(old)
    accepted = False
    for entry in new:
        name = entry_name(entry)
        if name is not None:
            if name in names:
                continue
            names.add(name)
        result.insert(0, entry)
        accepted = True
    return result if accepted else None


def dedup_new(new: list[list[str]]) -> list[list[str]]:
    """``update=1`` on a missing tag: the request de-duplicated the same way."""
    return append_urls([], new, True) or []
