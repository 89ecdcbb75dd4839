"""The node side of the worker protocol, without I/O (master-api.md 8.2, 8.3, 8.9).

Owns: the encoder for master -> worker messages (compact JSON; the frames themselves
are ``disco.framing``'s, shared with the worker side), the payload
shape checks of every worker -> master message of 8.3, and the MSG rate limiter of 8.9.
Driving a real worker process (pipes, timeouts, replies) is ``disco.node.runner``'s job.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

# The frame codec is disco.framing's (shared with the worker side); named here too.
from disco.framing import (  # noqa: F401
    MAX_PAYLOAD,
    MAX_TYPE_BYTES,
    PROTOCOL_VERSION,
    Frame,
    FrameParser,
    FramingError,
    FramingReason,
    encode_frame,
)
from disco.lazydataclass import lazy_dataclass

SUPPORTED_VERSION = PROTOCOL_VERSION


class InvalidMessage(Exception):
    """A well-framed message that breaks the protocol: fatal for the job (8.3)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


# what json.dumps(payload, separators=(",", ":"), ensure_ascii=False) does, built once
_compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def encode(mtype: str, payload: Any) -> bytes:
    """A master -> worker message: ``<TYPE> SP <LEN> SP <compact JSON> LF`` (8.2)."""
    return encode_frame(mtype, _compact_json(payload).encode("utf-8"))


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


@lazy_dataclass(frozen=True)  # not used by every run (a tiny job): made at first use
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


@lazy_dataclass(frozen=True)  # not used by every run (a tiny job): made at first use
class Error:
    message: str


@lazy_dataclass(frozen=True)  # not used by every run (a tiny job): made at first use
class Fatal:
    message: str


@lazy_dataclass(frozen=True)  # not used by every run (a tiny job): made at first use
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


_decode = json.JSONDecoder().decode  # json.loads of a str, without its wrapper
# first bytes for which json.loads's encoding detection may not answer UTF-8: NUL and
# the first bytes of the UTF-8, UTF-16 and UTF-32 byte order marks
_NOT_PLAIN_UTF8 = (b"\0", b"\xef", b"\xfe", b"\xff")


def _json_payload(frame: Frame) -> Any:
    """The JSON payload; the text of MSG/ERROR/FATAL that is not UTF-8 becomes
    ``WARNING: Binary message data: `` and every byte as ``\\xNN`` (4.1)."""
    payload = frame.payload
    if payload == b'""':
        return ""  # TASK, INPUT of all, DONE: the commonest payload, no parser needed
    try:
        if payload[:1] not in _NOT_PLAIN_UTF8 and payload[1:2] != b"\0":
            # what json.loads(payload) does when its encoding detection says UTF-8
            # (no BOM, no NUL among the first two bytes), without its type checks
            return _decode(payload.decode("utf-8", "surrogatepass"))
        return json.loads(payload)
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
