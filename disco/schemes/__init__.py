"""URL-scheme dispatch (library.md 13): ``disco.schemes.scheme_<name>`` per scheme.

A scheme module provides ``input_stream(stream, size, url, params)`` and optionally
``open(url, task=None)``.  A URL without ``scheme://`` uses ``scheme_file``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from disco.error import DiscoError
from disco.util import globalize, schemesplit


def import_scheme(url: str) -> ModuleType:
    """The module ``disco.schemes.scheme_<scheme>`` for ``url`` (``file`` without scheme)."""
    scheme = schemesplit(url)[0] or "file"
    name = "disco.schemes.scheme_%s" % scheme
    module = sys.modules.get(name)  # imported already (a task's schemes are): no importlib
    if module is not None and not getattr(
        getattr(module, "__spec__", None), "_initializing", False
    ):
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != "disco.schemes.scheme_%s" % scheme:
            raise
        raise DiscoError(
            "Unknown URL scheme %r in %s (no disco.schemes.scheme_%s)" % (scheme, url, scheme)
        )


def input_stream(
    stream: Any, size: Any, url: str, params: Any, globals: dict[str, Any] | None = None
) -> Any:
    """Call the scheme's ``input_stream`` (after ``globalize`` when ``globals`` is given)."""
    fn = import_scheme(url).input_stream
    if globals:
        globalize(fn, globals)
    return fn(stream, size, url, params)


def open(url: str, task: Any = None) -> Any:  # noqa: A001 - 0.5 name
    """Open ``url`` with its scheme's ``open``."""
    mod = import_scheme(url)
    if not hasattr(mod, "open"):
        raise DiscoError("URL scheme of %s cannot be opened directly (no open())" % url)
    return mod.open(url, task=task)


def open_chain(url: str, task: Any = None) -> Iterator[Any]:
    """The records of a file in the internal format (16.1) at ``url`` (closed at the end)."""
    from disco.worker.task_io import chain_reader

    fd = open(url, task=task)
    return _closing(chain_reader(fd, None, url), fd)


def _closing(records: Iterator[Any], fd: Any) -> Iterator[Any]:
    try:
        yield from records
    finally:
        fd.close()
