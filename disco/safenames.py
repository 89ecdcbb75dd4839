"""Names that become paths: the one validator (docs/decisions.md, "Names and paths").

Every name that a request, a job pack or the config table turns into a file path passes
here first: job names and prefixes, stage names, DDFS tag names, blob names and object ids
(so OOB keys, which are blob names), node names, and the relative paths of the data
routes (``/disco/<path>``, ``/ddfs/<path>``, static files).  The checks work on the
decoded name (aiohttp hands handlers percent-decoded paths, so ``%2e%2e`` arrives as
``..``) and refuse: non-strings, empty names, NUL and other control characters,
``..``, absolute paths, path separators where the format has none, characters outside
the format's alphabet, and names longer than the format (or the file system) allows.

The second line of defence is ``inside``: the real path (symlinks resolved) of whatever
is about to be read, written or deleted must lie below the real path of its data root.

Everything here is pure and raises ``UnsafeName`` (a ``ValueError``) with a short reason
that never contains a server path.
"""

from __future__ import annotations

import os
import re

NAME_CHARS = r"A-Za-z0-9_\-@:"  # DDFS names, job names, OOB keys (ddfs.md 1.1)
NAME_MAX = 511  # DDFS name syntax (ddfs.md 1.1)
FILE_NAME_MAX = 255  # bytes of one path component (Linux NAME_MAX)
# A stored DDFS object ``NAME$TS`` also appears in staging names (``!partial-TS.NAME$TS``):
# leave room for that prefix so a valid id never hits "File name too long".
OBJECT_ID_MAX = FILE_NAME_MAX - 32
STORED_NAME_MAX = 200  # a DDFS name that is written to disk (= new_blob's hashing limit)
JOB_NAME_MAX = STORED_NAME_MAX - len("disco:job:oob:")  # its tags must be storable too
JOB_PREFIX_MAX = JOB_NAME_MAX - 24  # room for "@<mega>:<secs>:<micro>"
STAGE_NAME_MAX = 128
HOST_NAME_MAX = 253

_NAME_RE = re.compile(r"[%s]+\Z" % NAME_CHARS)
_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._\-]*\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_FILE_UNSAFE_RE = re.compile(r"[^A-Za-z0-9_.@:\-]")


class UnsafeName(ValueError):
    """A name or path that must not become a path; ``str()`` is a short reason."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__("invalid %s: %s" % (what, reason))
        self.what = what
        self.reason = reason


def _text(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise UnsafeName(what, "string expected")
    if not name:
        raise UnsafeName(what, "empty")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafeName(what, "not valid Unicode") from None  # lone surrogates
    if "\0" in name:
        raise UnsafeName(what, "NUL character")
    return name


def _length(name: str, what: str, limit: int) -> str:
    if len(name.encode("utf-8")) > limit:
        raise UnsafeName(what, "longer than %d bytes" % limit)
    return name


def check_name(name: object, what: str = "name", limit: int = NAME_MAX) -> str:
    """A name of the DDFS alphabet ``[A-Za-z0-9_\\-@:]``, 1..``limit`` characters."""
    text = _text(name, what)
    if not _NAME_RE.match(text):
        raise UnsafeName(what, "only letters, digits and _-@: are allowed")
    return _length(text, what, limit)


def valid_name(name: object, limit: int = NAME_MAX) -> bool:
    try:
        check_name(name, limit=limit)
    except UnsafeName:
        return False
    return True


def check_job_name(name: object) -> str:
    """A job name (``<prefix>@<hex>:<hex>:<hex>``, master-api.md 5): one path component."""
    return check_name(name, "job name", JOB_NAME_MAX)


def check_job_prefix(prefix: object) -> str:
    """A job prefix: no ``/`` or ``.`` (master-api.md 5), the DDFS alphabet, and short
    enough for the job name and its tags to fit in file names."""
    return check_name(prefix, "prefix", JOB_PREFIX_MAX)


def check_stored_name(name: object, what: str = "tag") -> str:
    """A DDFS tag name or blob prefix that is written to disk."""
    return check_name(name, what, STORED_NAME_MAX)


def check_object_id_length(oid: str) -> str:
    """A DDFS object id ``NAME$TS`` short enough to be a file (with its staging prefix)."""
    return _length(_text(oid, "object id"), "object id", OBJECT_ID_MAX)


def check_component(name: object, what: str, limit: int = FILE_NAME_MAX) -> str:
    """One path component of a format with a free alphabet (stage names): no separators,
    no control characters, not ``.`` or ``..``."""
    text = _text(name, what)
    if "/" in text or "\\" in text:
        raise UnsafeName(what, "path separator")
    if text in (".", ".."):
        raise UnsafeName(what, "'.' and '..' are not names")
    if _CONTROL_RE.search(text):
        raise UnsafeName(what, "control character")
    return _length(text, what, limit)


def check_stage_name(name: object) -> str:
    """A stage name: free text (``"split words/now"`` is fine), but no NUL or control
    characters and at most ``STAGE_NAME_MAX`` bytes.  It never is a path component
    itself: file names use ``file_safe(name)``."""
    text = _text(name, "stage name")
    if _CONTROL_RE.search(text):
        raise UnsafeName("stage name", "control character")
    return _length(text, "stage name", STAGE_NAME_MAX)


def file_safe(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9_.@:-]`` replaced by ``_``, for
    use inside a file name that has a fixed suffix (``<stage>-<task>-<ts>.results``)."""
    return _FILE_UNSAFE_RE.sub("_", name)


def check_host_name(name: object) -> str:
    """A node name (config table, blacklists): a host name or address."""
    text = _text(name, "node name")
    if not _HOST_RE.match(text):
        raise UnsafeName("node name", "only letters, digits and ._- are allowed")
    if ".." in text:
        raise UnsafeName("node name", "'..' is not allowed")
    return _length(text, "node name", HOST_NAME_MAX)


def relative_parts(relpath: object, what: str = "path") -> list[str]:
    """The components of a relative path below a data root, ``.`` and empty ones dropped.

    Refuses absolute paths, ``..`` components, backslashes, NUL and control characters,
    components over the file system's length limit, and paths with no component at all.
    """
    text = _text(relpath, what)
    if text.startswith("/"):
        raise UnsafeName(what, "absolute path")
    if "\\" in text:
        raise UnsafeName(what, "backslash")
    if _CONTROL_RE.search(text):
        raise UnsafeName(what, "control character")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeName(what, "'..' component")
    if not parts:
        raise UnsafeName(what, "no file name")
    for part in parts:
        _length(part, what, FILE_NAME_MAX)
    return parts


def _within(real_root: str, real: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def inside(root: str, path: str, what: str = "path") -> str:
    """``path`` with symlinks resolved, if it lies below ``root`` (also resolved); else
    ``UnsafeName``.  The second line of defence after the name checks."""
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    if not _within(real_root, real) or real == real_root:
        raise UnsafeName(what, "outside its data directory")
    return real


def resolve(root: str, relpath: str, what: str = "path") -> str:
    """The real path of ``root/relpath`` after ``relative_parts`` and ``inside``."""
    return inside(root, os.path.join(root, *relative_parts(relpath, what)), what)


def no_symlink_below(root: str, path: str, what: str = "path") -> str:
    """``path`` (inside ``root``) if none of its components below ``root`` is a symlink.

    For deletions: ``inside`` resolves symlinks, but deleting ``root/a/b`` where ``a`` is a
    symlink to another place inside ``root`` would still delete the wrong thing.
    """
    inside(root, path, what)
    current = os.path.abspath(root)
    for part in os.path.relpath(os.path.abspath(path), current).split(os.sep):
        current = os.path.join(current, part)
        if os.path.islink(current):
            raise UnsafeName(what, "symbolic link in the path")
    return path
