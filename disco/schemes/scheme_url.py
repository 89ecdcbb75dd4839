"""``url://...``: the URL string itself is the only entry (library.md 13)."""

from __future__ import annotations

from typing import Any


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    return iter([url]), len(url), url
