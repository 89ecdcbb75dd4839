"""The worker protocol on the wire, without I/O (master-api.md 8.2, 8.3, 8.9).

Owns: the incremental frame parser for ``<TYPE> SP <LENGTH> SP <PAYLOAD> LF`` with the
limits of 8.2, the encoder for master -> worker messages (compact JSON), the payload
shape checks of every worker -> master message of 8.3, and the MSG rate limiter of 8.9.
Driving a real worker process (pipes, timeouts, replies) is ``disco.node.runner``'s job.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

MAX_TYPE_BYTES = 10  # 8.2: 10 bytes without a space -> invalid_type
MAX_PAYLOAD = 100 * 1024 * 1024  # 8.2 / 11.5: 100 MiB
SUPPORTED_VERSION = "1.1"

FramingReason = Literal["invalid_type", "invalid_length", "message_too_big", "invalid_body"]


class FramingError(Exception):
    """The byte stream from the worker cannot be parsed any further (8.2, 8.8).

    ``reason`` is one of the four names of 8.8; ``unparsed`` holds the bytes from the
    start of the broken message on (the beginning of the worker's "last words").
    """

    def __init__(self, reason: FramingReason, unparsed: bytes) -> None:
        super().__init__(reason, unparsed)
        self.reason = reason
        self.unparsed = unparsed

    def __str__(self) -> str:
        return "Could not parse worker event: %s" % self.reason


class InvalidMessage(Exception):
    """A well-framed message that breaks the protocol: fatal for the job (8.3)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


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


def encode(mtype: str, payload: Any) -> bytes:
    """A master -> worker message: ``<TYPE> SP <LEN> SP <compact JSON> LF`` (8.2)."""
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return b"%s %d %s\n" % (mtype.encode("ascii"), len(body), body)


# -- worker -> master messages (8.3) --------------------------------------------------


@dataclass(frozen=True)
class WorkerHello:
    version: str
    pid: int


@dataclass(frozen=True)
class TaskRequest:
    pass


@dataclass(frozen=True)
class InputRequest:
    mode: Literal["all", "include", "exclude"]
    ids: tuple[int, ...]


@dataclass(frozen=True)
class InputError:
    input_id: int
    replica_ids: tuple[int, ...]


@dataclass(frozen=True)
class Msg:
    text: str


@dataclass(frozen=True)
class Output:
    label: int
    location: str
    size: int


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class Fatal:
    message: str


@dataclass(frozen=True)
class Ping:
    pass


WorkerMessage = (
    WorkerHello
    | TaskRequest
    | InputRequest
    | InputError
    | Msg
    | Output
    | Done
    | Error
    | Fatal
    | Ping
)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(value: object) -> bool:
    return isinstance(value, list) and all(_is_int(v) for v in value)


def _excerpt(payload: bytes, limit: int = 200) -> str:
    text = payload[:limit].decode("utf-8", "replace")
    return text + ("..." if len(payload) > limit else "")


_TEXT_MESSAGES = ("MSG", "ERROR", "FATAL")
BINARY_PREFIX = "WARNING: Binary message data: "


def _json_payload(frame: Frame) -> Any:
    """The JSON payload; the text of MSG/ERROR/FATAL that is not UTF-8 becomes
    ``WARNING: Binary message data: `` and every byte as ``\\xNN`` (4.1)."""
    try:
        return json.loads(frame.payload)
    except UnicodeDecodeError:
        if frame.type not in _TEXT_MESSAGES:
            raise
    value = json.loads(frame.payload.decode("utf-8", "surrogateescape"))
    if not isinstance(value, str):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # also an escaped lone surrogate (\\ud800)
        data = value.encode("utf-8", "surrogatepass")
    return BINARY_PREFIX + "".join("\\x%02x" % byte for byte in data)


def decode_message(frame: Frame) -> WorkerMessage:
    """Decode and shape-check one worker message (8.3); ``InvalidMessage`` if bad.

    Every failure here is fatal for the job: an unknown type, a payload that is not
    JSON, a payload of the wrong shape, or a WORKER with a version other than 1.1.
    """
    mtype = frame.type
    if mtype not in _SHAPES:
        raise InvalidMessage("Unknown message type from worker: %s" % mtype)
    if mtype == "PING" and not frame.payload:
        return Ping()  # 8.3 gives PING no payload; "PING 0 " is accepted too
    try:
        payload = _json_payload(frame)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise InvalidMessage(
            "Invalid JSON payload in %s message: %s" % (mtype, _excerpt(frame.payload))
        ) from None
    message = _SHAPES[mtype](payload)
    if message is None:
        raise InvalidMessage(
            "Invalid payload for %s message: %s" % (mtype, _excerpt(frame.payload))
        )
    if isinstance(message, WorkerHello) and message.version != SUPPORTED_VERSION:
        raise InvalidMessage("Invalid worker version: %s" % message.version)
    return message


def _worker(p: Any) -> WorkerMessage | None:
    if isinstance(p, dict) and isinstance(p.get("version"), str) and _is_int(p.get("pid")):
        return WorkerHello(p["version"], p["pid"])
    return None


def _task(p: Any) -> WorkerMessage | None:
    return TaskRequest() if isinstance(p, str) else None


def _input(p: Any) -> WorkerMessage | None:
    if p == "":
        return InputRequest("all", ())
    if isinstance(p, list) and len(p) == 2 and p[0] in ("include", "exclude") and _int_list(p[1]):
        return InputRequest(p[0], tuple(p[1]))
    return None


def _input_err(p: Any) -> WorkerMessage | None:
    if isinstance(p, list) and len(p) == 2 and _is_int(p[0]) and _int_list(p[1]):
        return InputError(p[0], tuple(p[1]))
    return None


def _msg(p: Any) -> WorkerMessage | None:
    return Msg(p) if isinstance(p, str) else None


def _output(p: Any) -> WorkerMessage | None:
    if (
        isinstance(p, list)
        and len(p) == 3
        and _is_int(p[0])
        and isinstance(p[1], str)
        and _is_int(p[2])
    ):
        return Output(p[0], p[1], p[2])
    return None


def _done(p: Any) -> WorkerMessage | None:
    return Done() if isinstance(p, str) else None


def _error(p: Any) -> WorkerMessage | None:
    return Error(p) if isinstance(p, str) else None


def _fatal(p: Any) -> WorkerMessage | None:
    return Fatal(p) if isinstance(p, str) else None


def _ping(p: Any) -> WorkerMessage | None:
    # 8.3 / 13.6: PING's payload is unspecified; any JSON value is accepted.
    return Ping()


_SHAPES = {
    "WORKER": _worker,
    "TASK": _task,
    "INPUT": _input,
    "INPUT_ERR": _input_err,
    "MSG": _msg,
    "OUTPUT": _output,
    "DONE": _done,
    "ERROR": _error,
    "FATAL": _fatal,
    "PING": _ping,
}


# -- MSG rate limit (8.9) ---------------------------------------------------------------

RateVerdict = Literal["ok", "slow", "fatal"]


class MsgRateLimiter:
    """The MSG rate limit of 8.9, as 0.5 computes it.

    On each MSG: remember its arrival time, drop at most one remembered time older than
    ``window`` seconds, then count.  Above ``slow`` the OK reply is delayed; at ``fatal``
    the job is killed.  Dropping at most one entry per MSG makes the count only an
    approximation of "MSGs in the last second"; that is the original behaviour.
    """

    def __init__(self, slow: int = 5, fatal: int = 10, window: float = 1.0) -> None:
        self.slow = slow
        self.fatal = fatal
        self.window = window
        self._times: deque[float] = deque()

    def arrive(self, now: float) -> tuple[RateVerdict, int]:
        """Record one MSG at ``now`` (seconds); the verdict and the current count."""
        self._times.append(now)
        if self._times and now - self._times[0] > self.window:
            self._times.popleft()
        count = len(self._times)
        if count >= self.fatal:
            return "fatal", count
        if count > self.slow:
            return "slow", count
        return "ok", count


def behaving_badly(count: int) -> str:
    """The fatal error text of 8.9."""
    return "Worker is behaving badly: Sent %d events in a second, ignoring replies." % count
