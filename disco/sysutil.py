"""Worker memory limit (library.md 15): ``available_memory``, ``set_mem_limit``."""

from __future__ import annotations

import logging
import os
import resource

logger = logging.getLogger(__name__)


def available_memory() -> int:
    """Physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def mem_limit_bytes(limit: str | int) -> int:
    """``'N%'`` of physical memory, a number of bytes, or a size with a ``K``/``M``/``G``/``T``
    suffix (``'512M'``); ``0`` for no limit (``''`` or ``0``)."""
    text = str(limit).strip().upper().removesuffix("B")
    if not text:
        return 0
    if text.endswith("%"):
        return int(available_memory() * float(text[:-1]) / 100)
    if text[-1:] in _UNITS:
        return int(float(text[:-1]) * _UNITS[text[-1]])
    return int(float(text))


def set_mem_limit(limit: str | int) -> int:
    """Apply the limit to ``RLIMIT_AS`` (soft and hard); never above the current hard limit.

    Returns the limit in bytes, ``0`` when there is none (nothing is changed then).
    """
    nbytes = mem_limit_bytes(limit)
    if nbytes <= 0:
        return 0
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
    logger.debug("memory limit set to %d bytes", nbytes)
    return nbytes
