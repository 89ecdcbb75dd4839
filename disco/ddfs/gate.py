"""Transfer gates of a DDFS node: at most ``active`` uploads (or downloads) at once,
``queue`` more waiting up to ``wait`` seconds (ddfs.md 2.2)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal

UPLOADS_BUSY = "Maximum number of uploaders reached. Try again later"
DOWNLOADS_BUSY = "Maximum number of downloaders reached. Try again later"
NODE_BUSY = "Disco node is busy"


@dataclass(frozen=True)
class TransferLimits:
    """Active transfers, waiting transfers, seconds a transfer may wait (0.5: 3, 100, 60)."""

    active: int = 3
    queue: int = 100
    wait: float = 60.0


class TransferGate:
    """``enter()`` answers ``"ok"`` (then call ``leave()``), ``"full"`` when the queue is
    full (503) or ``"timeout"`` after waiting too long."""

    def __init__(self, limits: TransferLimits | None = None) -> None:
        self.limits = limits or TransferLimits()
        self._slots = asyncio.Semaphore(self.limits.active)
        self._waiting = 0

    async def enter(self) -> Literal["ok", "full", "timeout"]:
        if self._slots.locked() and self._waiting >= self.limits.queue:
            return "full"
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.limits.wait)
        except TimeoutError:
            return "timeout"
        finally:
            self._waiting -= 1
        return "ok"

    @property
    def waiting(self) -> int:
        """Transfers waiting for a slot now."""
        return self._waiting

    def leave(self) -> None:
        self._slots.release()
