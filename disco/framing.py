"""The worker protocol's frames, ``<TYPE> SP <LENGTH> SP <PAYLOAD> LF`` (master-api.md 8.2),
for both sides and without I/O: ``FrameParser`` reads them incrementally, ``encode_frame``
writes one.

The node side (``disco.node.protocol``, ``disco.node.runner``) parses the worker's
requests and encodes replies; the worker side (``disco.worker.protocol``) encodes
requests and parses the master's replies.  What the payloads mean is each side's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MAX_TYPE_BYTES = 10  # 8.2: 10 bytes without a space -> invalid_type
MAX_PAYLOAD = 100 * 1024 * 1024  # 8.2 / 11.5: 100 MiB
#: The protocol version: the worker sends it in WORKER, the node accepts only it (8.3).
PROTOCOL_VERSION = "1.1"

FramingReason = Literal["invalid_type", "invalid_length", "message_too_big", "invalid_body"]


class FramingError(Exception):
    """The byte stream cannot be parsed any further (8.2, 8.8).

    ``reason`` is one of the four names of 8.8; ``unparsed`` holds the bytes from the
    start of the broken message on (the beginning of the worker's "last words").
    """

    def __init__(self, reason: FramingReason, unparsed: bytes) -> None:
        super().__init__(reason, unparsed)
        self.reason = reason
        self.unparsed = unparsed

    def __str__(self) -> str:
        return "Could not parse worker event: %s" % self.reason


@dataclass(frozen=True)
class Frame:
    """One complete message: its type and the raw payload bytes (not yet decoded)."""

    type: str
    payload: bytes


class FrameParser:
    """Incremental parser for ``<TYPE> SP <LENGTH> SP <PAYLOAD> LF`` (8.2).

    ``feed()`` bytes as they arrive, then call ``next_frame()`` until it returns
    ``None``.  Once the stream is broken every ``next_frame()`` raises the same
    ``FramingError``; bytes fed afterwards are kept in ``unparsed``.
    """

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._max_payload = max_payload
        self._buf = bytearray()
        self._error: FramingError | None = None

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def in_message(self) -> bool:
        """True while part of a message has arrived but not all of it."""
        return bool(self._buf) and self._error is None

    @property
    def broken(self) -> bool:
        return self._error is not None

    @property
    def unparsed(self) -> bytes:
        """Bytes received but not consumed by a complete message."""
        return bytes(self._buf)

    def _fail(self, reason: FramingReason) -> FramingError:
        self._error = FramingError(reason, bytes(self._buf))
        return self._error

    def next_frame(self) -> Frame | None:
        """The next complete message, ``None`` if more bytes are needed."""
        if self._error is not None:
            self._error.unparsed = bytes(self._buf)
            raise self._error
        buf = self._buf
        if not buf:
            return None
        # TYPE: 1..9 bytes before the first space; 10 bytes without one is broken.
        space = buf.find(b" ", 0, MAX_TYPE_BYTES)
        if space < 0:
            if len(buf) >= MAX_TYPE_BYTES:
                raise self._fail("invalid_type")
            return None
        if space == 0:
            raise self._fail("invalid_type")
        try:
            mtype = buf[:space].decode("ascii")
        except UnicodeDecodeError:
            raise self._fail("invalid_type") from None
        # LENGTH: decimal digits up to the next space, value <= max payload.
        pos = space + 1
        length = 0
        ndigits = 0
        while True:
            if pos >= len(buf):
                return None
            byte = buf[pos]
            if byte == 0x20:  # space
                break
            if not 0x30 <= byte <= 0x39:
                raise self._fail("invalid_length")
            length = length * 10 + (byte - 0x30)
            ndigits += 1
            if length > self._max_payload:
                raise self._fail("message_too_big")
            pos += 1
        if ndigits == 0:
            raise self._fail("invalid_length")
        start = pos + 1
        end = start + length
        if len(buf) <= end:  # payload and its LF not all here yet
            return None
        if buf[end] != 0x0A:
            raise self._fail("invalid_body")
        payload = bytes(buf[start:end])
        del buf[: end + 1]
        return Frame(mtype, payload)


def encode_frame(mtype: str, body: bytes) -> bytes:
    """One message: ``<TYPE> SP <len(body)> SP <body> LF`` (8.2)."""
    return b"%s %d %s\n" % (mtype.encode("ascii"), len(body), body)
