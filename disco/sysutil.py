"""Worker memory limit (library.md 15): ``available_memory``, ``set_mem_limit``."""

from __future__ import annotations

import logging
import os
import resource

logger = logging.getLogger(__name__)


def available_memory() -> int:
    """Physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def mem_limit_bytes(limit: str | int) -> int:
    """``'N%'`` of physical memory, or a number of bytes."""
    text = str(limit).strip()
    if text.endswith("%"):
        return int(available_memory() * float(text[:-1]) / 100)
    return int(float(text))


def set_mem_limit(limit: str | int) -> int:
    """Apply the limit to ``RLIMIT_AS`` (soft and hard); never above the current hard limit."""
    nbytes = mem_limit_bytes(limit)
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        nbytes = min(nbytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (nbytes, nbytes))
    logger.debug("memory limit set to %d bytes", nbytes)
    return nbytes
