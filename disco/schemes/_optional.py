"""Helpers of the schemes that need optional libraries (``s3``, ``redis``).

``require`` imports the client library or raises a ``DiscoError`` that names the scheme
and the pip extra to install; ``param`` reads a job parameter from a dict or a
``Params`` object (0.5 read them with ``params.get``, which ``Params`` lacks).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from disco.error import DiscoError


class SchemeUnavailable(DiscoError, ImportError):
    """A URL scheme whose client library is not installed, or that is not supported."""


def require(module: str, scheme: str, extra: str) -> ModuleType:
    """``import module``, or a ``SchemeUnavailable`` naming ``scheme`` and the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise SchemeUnavailable(
            "%s:// URLs need the %r package, which is not installed here (%s); "
            "install it with: pip install 'disco-mapreduce[%s]'" % (scheme, module, e, extra)
        )


def param(params: Any, key: str, default: Any = None) -> Any:
    """``params[key]`` for dicts, ``params.key`` for ``Params``; ``default`` if absent."""
    if params is None:
        return default
    if isinstance(params, dict):
        return params.get(key, default)
    getter = getattr(params, "get", None)
    if callable(getter):
        return getter(key, default)
    return getattr(params, key, default)
