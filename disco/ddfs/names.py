"""DDFS names: tag and blob name rules, timestamps, object ids and URL forms (ddfs.md 1.1-1.6).

Pure functions shared by the master, the nodes and the client:

* names: ``[A-Za-z0-9_\\-@:]``, 1..511 characters (``valid_name``, ``safe_name``);
* timestamps: ``{MegaSecs, Secs, MicroSecs}`` as unpadded lowercase hex joined by ``-``
  (``Timestamp``), compared as integer triples;
* object ids ``NAME$TS`` (``object_id``, ``parse_object_id``), their hash directory
  (``hash_dir``) and the blob prefix rule of ``new_blob`` (``blob_prefix``);
* URLs: canonical blob and tag-version URLs (``disco://HOST/ddfs/VOL/KIND/HH/ID``), blob
  upload URLs, ``tag://`` URLs, and the entry name used for de-duplication (``entry_name``).
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import NamedTuple

from disco.lazydataclass import lazy_dataclass
from disco.safenames import NAME_CHARS, STORED_NAME_MAX
from disco.safenames import NAME_MAX as NAME_MAX
from disco.safenames import valid_name as valid_name

PREFIX_MAX = STORED_NAME_MAX  # longer new_blob prefixes are replaced by their MD5 (1.3)
_UNSAFE_RE = re.compile(r"[^%s]" % NAME_CHARS)
_ENTRY_NAME_RE = re.compile(r"/.{2}/(.*)\$", re.DOTALL)
_DDFS_PATH_RE = re.compile(r"/ddfs/(vol[^/]*)/(blob|tag)/([0-9a-f]{2})/([^/]+)\Z")

DELETED_TAG = "+deleted"  # internal tombstone tag (1.11); not addressable through the API


class InvalidName(ValueError):
    """A tag name, blob prefix or object id that breaks the rules of 1.1/1.2."""


def safe_name(name: str | bytes) -> str:
    """``name`` with every illegal character replaced by ``_`` (``DDFS.safe_name``)."""
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return _UNSAFE_RE.sub("_", name)


def blob_prefix(prefix: str) -> str:
    """The prefix ``new_blob`` uses: prefixes over 200 characters become their MD5 (1.3)."""
    if len(prefix) > PREFIX_MAX:
        return hashlib.md5(prefix.encode("utf-8")).hexdigest()
    return prefix


# -- timestamps (1.2) ---------------------------------------------------------------------
def _hex(n: int) -> str:
    return "00" if n == 0 else "%x" % n


@lazy_dataclass(frozen=True, order=True)
class Timestamp:
    """An Erlang-style ``{MegaSecs, Secs, MicroSecs}``; ordered as an integer triple."""

    mega: int
    secs: int
    micro: int

    @classmethod
    def from_micros(cls, micros: int) -> Timestamp:
        secs, micro = divmod(micros, 1_000_000)
        mega, secs = divmod(secs, 1_000_000)
        return cls(mega, secs, micro)

    @classmethod
    def from_time(cls, t: float) -> Timestamp:
        return cls.from_micros(int(round(t * 1_000_000)))

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """``"6a4-1e240-9fbf1"`` -> ``Timestamp(1700, 123456, 654321)``."""
        parts = text.split("-")
        if len(parts) != 3:
            raise InvalidName("Invalid timestamp %r" % text)
        try:
            values = [int(p, 16) for p in parts]
        except ValueError:
            raise InvalidName("Invalid timestamp %r" % text) from None
        if any(v < 0 for v in values) or any(not re.fullmatch("[0-9a-fA-F]+", p) for p in parts):
            raise InvalidName("Invalid timestamp %r" % text)
        return cls(*values)

    @property
    def micros(self) -> int:
        return (self.mega * 1_000_000 + self.secs) * 1_000_000 + self.micro

    @property
    def seconds(self) -> float:
        return self.micros / 1_000_000

    def __str__(self) -> str:
        return "%s-%s-%s" % (_hex(self.mega), _hex(self.secs), _hex(self.micro))


class TimestampClock:
    """Hands out strictly increasing timestamps (unique object ids within one process)."""

    def __init__(self) -> None:
        self._last = 0

    def now(self, at: float | None = None) -> Timestamp:
        micros = int((time.time() if at is None else at) * 1_000_000)
        self._last = max(micros, self._last + 1)
        return Timestamp.from_micros(self._last)


# -- object ids (1.2, 1.3, 1.5) -----------------------------------------------------------
class ObjectId(NamedTuple):
    name: str
    ts: Timestamp

    def __str__(self) -> str:
        return object_id(self.name, self.ts)


def object_id(name: str, ts: Timestamp) -> str:
    return "%s$%s" % (name, ts)


def parse_object_id(oid: str, *, internal: bool = False) -> ObjectId:
    """``NAME$TS`` -> ``ObjectId``; raises ``InvalidName`` (bad name or timestamp).

    ``internal``: also accept the internal tag name ``+deleted`` (tag version files).
    """
    parts = oid.split("$")
    if len(parts) != 2 or not (valid_name(parts[0]) or (internal and parts[0] == DELETED_TAG)):
        raise InvalidName("Invalid object id %r" % oid)
    return ObjectId(parts[0], Timestamp.parse(parts[1]))


def hash_dir(oid: str) -> str:
    """First byte of ``MD5(oid)`` as two lowercase hex digits (1.3)."""
    return hashlib.md5(oid.encode("utf-8")).hexdigest()[:2]


def relative_path(volume: str, kind: str, oid: str) -> str:
    """``VOL/KIND/HH/ID``: where an object lives below a node's DDFS root."""
    return "%s/%s/%s/%s" % (volume, kind, hash_dir(oid), oid)


# -- URLs ---------------------------------------------------------------------------------
def disco_url(host: str, volume: str, kind: str, oid: str) -> str:
    """Canonical URL of a blob (``kind="blob"``) or tag version (``"tag"``)."""
    return "disco://%s/ddfs/%s" % (host, relative_path(volume, kind, oid))


def put_url(host: str, put_port: int, oid: str) -> str:
    """Where a blob is uploaded: ``http://HOST:DDFS_PUT_PORT/ddfs/ID`` (2.4.1)."""
    return "http://%s:%d/ddfs/%s" % (host, put_port, oid)


class DDFSUrl(NamedTuple):
    """A parsed ``disco://HOST/ddfs/VOL/KIND/HH/ID`` (or ``http://HOST:PORT/...``) URL."""

    host: str
    volume: str
    kind: str  # "blob" or "tag"
    oid: str

    @property
    def relpath(self) -> str:
        return relative_path(self.volume, self.kind, self.oid)


def parse_ddfs_url(url: str) -> DDFSUrl | None:
    """A blob or tag-version URL, or ``None`` for anything else (``tag://``, ``raw://``...)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("disco", "http", "https"):
        return None
    netloc, slash, path = rest.partition("/")
    host = netloc.rpartition("@")[2]
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    match = _DDFS_PATH_RE.match(slash + path)
    if not host or match is None:
        return None
    volume, kind, hh, oid = match.groups()
    if hh != hash_dir(oid):
        return None
    return DDFSUrl(host, volume, kind, oid)


class TagUrl(NamedTuple):
    """``tag://[USERINFO@][HOST[:PORT]/]NAME`` split up (1.6)."""

    name: str
    host: str  # "" (this master), "host" or "host:port"
    token: str | None


def parse_tag_url(url: str) -> TagUrl | None:
    """A ``tag://`` URL split into name, host and token; ``None`` if not a tag URL."""
    if not url.startswith("tag://"):
        return None
    rest = url[len("tag://") :]
    token: str | None = None
    if "@" in rest.split("/", 1)[0] or ("@" in rest and "/" in rest):
        userinfo, _, rest = rest.partition("@")
        token = userinfo.split(":", 1)[1] if ":" in userinfo else userinfo
    host, slash, name = rest.rpartition("/")
    return TagUrl(name, host if slash else "", token)


def entry_name(entry: list[str]) -> str | None:
    """The name of a tag entry, from its first URL (1.6): ``tag://X`` -> ``X``, a blob
    URL -> its prefix, ``None`` when there is none.

    [Quirk] kept as in 0.5: after the first ``/xx/`` of the URL, up to the last ``$``, so
    a two-letter host (``disco://n1/ddfs/...``) yields ``ddfs/vol0/blob/HH/prefix``.
    """
    if not entry:
        return None
    first = entry[0]
    if first.startswith("tag://"):
        return first[len("tag://") :]
    match = _ENTRY_NAME_RE.search(first)
    return match.group(1) if match else None


def is_url_list(value: object) -> bool:
    """A tag's ``urls`` shape: a list of lists of strings (1.6)."""
    return isinstance(value, list) and all(
        isinstance(entry, list) and all(isinstance(u, str) for u in entry) for entry in value
    )
