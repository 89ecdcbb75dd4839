"""Tag names and ``tag://`` URLs on the client side (ddfs.md 3.1, 1.6).

Owns the module-level helpers of Disco 0.5's ``disco.ddfs``: ``canonizetag``, ``istag``,
``tagname``, ``relativizetag`` and the ``InvalidTag`` error.  The server's name rules
(what the master accepts) live with the server; these functions only shape URLs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from disco.ddfs.names import NAME_CHARS
from disco.util import urlsplit

unsafe_re = re.compile(r"[^%s]" % NAME_CHARS)  # the 0.5 module-level name


class InvalidTag(ValueError):
    """A value that is neither a tag name nor a ``tag://`` URL."""


def canonizetag(tag: Any) -> str:
    """``name`` or ``tag://...`` (or a list whose first item is one) -> ``tag://...``.

    A bare string counts as a tag name when it has neither ``://`` nor ``/`` and is not
    ``-``; anything else raises ``InvalidTag``.
    """
    if isinstance(tag, (list, tuple)):
        if tag:
            return canonizetag(tag[0])
    elif isinstance(tag, str) and tag:
        if tag.startswith("tag://"):
            return tag
        if "://" not in tag and "/" not in tag and tag != "-":
            return "tag://%s" % tag
    raise InvalidTag("Invalid tag: %r" % (tag,))


def canonizetags(tags: Any) -> list[str]:
    """``canonizetag`` of every item (a single string counts as one tag)."""
    if isinstance(tags, str):
        tags = [tags]
    return [canonizetag(tag) for tag in tags]


def istag(tag: Any) -> str | None:
    """The canonical ``tag://`` URL of ``tag``, or ``None`` when it is not a tag.

    [Quirk, kept] a bare word such as ``urls`` or ``input.csv`` counts as a tag name.
    """
    try:
        return canonizetag(tag)
    except InvalidTag:
        return None


def tagname(tag: Any) -> str:
    """The name part of a tag (``tag://host/x``, ``tag://token@/x`` and ``x`` -> ``x``)."""
    _scheme, _loc, path = urlsplit(canonizetag(tag))
    return path


def relativizetag(tag: Any, parent: Any) -> str:
    """``tag`` as a canonical URL; with no host of its own it takes ``parent``'s host."""
    canonical = canonizetag(tag)
    _scheme, loc, name = urlsplit(canonical)
    _pscheme, ploc, _pname = urlsplit(canonizetag(parent))
    if loc or not ploc:
        return canonical
    return "tag://%s/%s" % (ploc, name)


def relativizetags(tags: Iterable[Any], parent: Any) -> list[str]:
    return [relativizetag(tag, parent) for tag in tags]
