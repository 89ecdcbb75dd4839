"""``https://`` URLs: the same functions as ``scheme_http`` (library.md 13)."""

from disco.schemes.scheme_http import input_stream, open  # noqa: F401

__all__ = ["input_stream", "open"]
