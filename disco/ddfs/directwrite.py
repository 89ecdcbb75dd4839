"""Writing a blob's bytes past the page cache (``O_DIRECT``), for ``BlobUpload``.

A node receiving a push writes every byte once and rarely reads it back at once, and
on a busy machine copying gigabytes through the page cache (and waiting for its
writeback) cost more CPU and time than the disk itself: ``dd oflag=direct`` wrote
1 GiB in 1.1 s with 0.17 s of system time where ``dd conv=fdatasync`` took 9 s and
2.25 s on the same machine (benchmarks/NOTES.md).  The bytes are gathered in a
page-aligned buffer (``mmap``) and written in whole buffers through a second,
``O_DIRECT`` descriptor of the staging file; the last partial block goes through the
ordinary file at the end.  Where ``O_DIRECT`` is missing or refused (``EINVAL``: tmpfs,
some file systems), everything goes through the ordinary file as before.
"""

from __future__ import annotations

import errno
import mmap
import os
from collections.abc import Callable
from typing import BinaryIO

#: Receives bytes into the buffer it is given; how many (0: the sender closed).
RecvInto = Callable[[memoryview], int]

#: Bytes gathered before one direct write (a multiple of ``ALIGN``).
BUFFER = 8 * 1024 * 1024
#: Offsets and lengths of direct writes are multiples of this (the largest usual
#: logical block size).
ALIGN = 4096


class DirectWriter:
    """Appends to ``file`` (an open, empty file at ``path``) through ``O_DIRECT`` when
    the system allows it; ``finish()`` writes what is left, then ``file`` is complete."""

    def __init__(self, path: str, file: BinaryIO) -> None:
        self.file = file
        self.fd: int | None = None
        self.written = 0  # bytes on disk through ``fd``
        self.fill = 0  # bytes waiting in ``buffer``
        flag = getattr(os, "O_DIRECT", 0)
        if flag:
            try:
                self.fd = os.open(path, os.O_WRONLY | flag)
            except OSError:
                self.fd = None
        self.buffer = mmap.mmap(-1, BUFFER) if self.fd is not None else None

    @property
    def direct(self) -> bool:
        return self.fd is not None

    def write(self, data: bytes) -> None:
        """Take ``data``; whole buffers go to the disk as they fill.  Call it only
        while ``direct``: otherwise the caller writes to ``file`` itself (after a
        refusal, ``file``'s position is the end of what was written)."""
        buffer = self.buffer
        assert buffer is not None
        view = memoryview(data)
        while view:
            if self.fd is None:  # refused on the way: the rest goes through ``file``
                self.file.seek(self.written)
                self.file.write(buffer[: self.fill])
                self.file.write(view)
                self.written += self.fill + len(view)
                self.fill = 0
                return
            n = min(len(view), BUFFER - self.fill)
            buffer[self.fill : self.fill + n] = view[:n]
            self.fill += n
            view = view[n:]
            if self.fill == BUFFER:
                self._flush(BUFFER)

    def receive(self, recv_into: RecvInto, limit: int) -> int:
        """Receive at most ``limit`` bytes straight into the buffer with one
        ``recv_into`` call (no copy of ours: ``socket.recv_into`` fills the aligned
        buffer the disk write reads); whole buffers go to the disk as they fill.  The
        count received.  Call it only while ``direct``."""
        assert self.buffer is not None and limit > 0
        with memoryview(self.buffer) as whole:
            with whole[self.fill : self.fill + min(limit, BUFFER - self.fill)] as free:
                n = recv_into(free)
        self.fill += n
        if self.fill == BUFFER:
            self._flush(BUFFER)
        return n

    def _flush(self, n: int) -> None:
        """Write the first ``n`` (aligned) bytes of the buffer at ``written``."""
        assert self.buffer is not None
        view = memoryview(self.buffer)[:n]
        try:
            while view:
                if self.fd is None:  # fell back below: the ordinary file takes the rest
                    self.file.seek(self.written)
                    self.file.write(view)
                    self.written += len(view)
                    break
                try:
                    done = os.pwrite(self.fd, view, self.written)
                except OSError as e:
                    if e.errno != errno.EINVAL:
                        raise
                    self._give_up_direct()
                    continue
                self.written += done
                view = view[done:]
        finally:
            view.release()
        self.buffer.move(0, n, self.fill - n)
        self.fill -= n

    def _give_up_direct(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def finish(self) -> None:
        """Write what is still buffered: aligned blocks directly, the rest (less than
        ``ALIGN`` bytes) through ``file``, which is left flushed (not synced)."""
        if self.buffer is not None and self.fill:
            aligned = self.fill - self.fill % ALIGN
            if aligned:
                self._flush(aligned)
            if self.fill:
                self.file.seek(self.written)
                self.file.write(self.buffer[: self.fill])
                self.written += self.fill
                self.fill = 0
        self.file.flush()

    def close(self) -> None:
        self._give_up_direct()
        if self.buffer is not None:
            self.buffer.close()
            self.buffer = None
