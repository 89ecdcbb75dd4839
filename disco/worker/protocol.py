"""The worker side of the worker protocol (master-api.md 8): requests on the process's
real stderr, replies read from stdin, printed text turned into MSG.  The frames are
``disco.framing``'s, the same codec the node side uses.

``WorkerProtocol`` holds the ``Worker`` classmethods that talk to the master (``exchange``,
``send``, ``get_task``, ``get_inputs``, ``get_input``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from disco.error import DataError, DiscoError
from disco.framing import FrameParser, FramingError, encode_frame
from disco.worker.inputs import IDedInput
from disco.worker.payload import dump_payload, load_payload

DISCO_WORKER_MAX_TIME = 24 * 60 * 60
#: The worker gives up waiting for a reply after this many seconds (master-api.md 8.8).
REPLY_TIMEOUT = 3 * DISCO_WORKER_MAX_TIME


class ProtocolError(DiscoError):
    """The master's side of the worker protocol broke (EOF, garbage, timeout)."""


# -- protocol I/O (master-api.md 8.2) ------------------------------------------------------
class _ReplyReader:
    """Reads the master's replies (``disco.framing`` frames, JSON payloads) from a fd."""

    #: Replies have no size limit of their own (8.2 limits the worker's messages).
    MAX_REPLY = 10**20 - 1

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.parser = FrameParser(self.MAX_REPLY)
        # Replies to messages sent without waiting (``WorkerProtocol.send_nowait``), in
        # order: ``True`` to keep the reply in ``kept``, ``False`` to drop it.
        self.owed: deque[bool] = deque()
        self.kept: deque[tuple[str, Any]] = deque()
        self.prefetched_inputs = False  # the first kept reply after TASK is INPUT's

    def settle(self) -> None:
        """Read the replies still owed to messages sent without waiting."""
        while self.owed:
            keep = self.owed[0]
            reply = self.read(REPLY_TIMEOUT)
            self.owed.popleft()
            if keep:
                self.kept.append(reply)

    def _fill(self, deadline: float) -> None:
        import select

        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProtocolError("No reply from the master in %d seconds" % REPLY_TIMEOUT)
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if ready:
            data = os.read(self.fd, 65536)
            if not data:
                raise ProtocolError("The master closed the worker's stdin")
            self.parser.feed(data)

    def read(self, timeout: float) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = self.parser.next_frame()
            except FramingError as e:
                raise ProtocolError(
                    "Malformed reply from the master (%s): %r" % (e.reason, e.unparsed[:40])
                ) from None
            if frame is not None:
                break
            self._fill(deadline)
        try:
            return frame.type, load_payload(frame.payload)
        except ValueError as e:
            raise ProtocolError("Reply from the master is not JSON: %s" % e)


_reader = _ReplyReader(0)
_lock = threading.RLock()
#: MSGs of the rate limit's "slow" threshold (node.protocol.MsgRateLimiter): up to this
#: many, the master's reply is never delayed.
MSG_FREE = 5
_msgs_sent = 0
#: Frames held back by ``WorkerProtocol.hold``, written with the next message that must
#: reach the master now; ``None`` while nothing is held (every frame written at once).
#: (Module globals next to ``_msgs_sent``, which every task writes: a task forked from a
#: warm process copies no other page for them.)
_held: list[bytes] | None = None
#: Set by ``taskrun.TaskRunner.main`` while the worker's own ``start``, ``end`` and
#: ``send`` run the task: DONE is the next message after ``end``'s, so a message sent
#: just before ``end`` may be held for DONE's write (the classic map's last MSG).
_done_follows = False


def reset() -> None:
    """The protocol state a task starts from (a reused worker's next task,
    ``disco.worker.warm``; after the zygote's rehearsal): no reply owed or kept, nothing
    held or counted."""
    global _held, _msgs_sent, _done_follows
    _reader.owed.clear()
    _reader.kept.clear()
    _reader.prefetched_inputs = False
    if _reader.parser.unparsed or _reader.parser.broken:
        _reader.parser = FrameParser(_reader.MAX_REPLY)
    _held = None
    _msgs_sent = 0
    _done_follows = False


class MessageWriter:
    """Stands in for ``sys.stdout``/``sys.stderr`` in a task: printed text becomes MSG.

    Text is sent when a line is complete (or on ``flush``), so ``print("a", "b")`` is
    one message ``a b`` rather than 0.5's one message per ``write`` call (which made
    a single print cost several of the few messages per second the master allows).
    Blank messages are dropped.
    """

    encoding = "utf-8"
    errors = "replace"

    def __init__(self, worker: Any) -> None:
        self.worker = worker
        self.pending = ""

    def write(self, data: str | bytes) -> int:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        self.pending += text
        if "\n" in text:
            complete, _, self.pending = self.pending.rpartition("\n")
            self._send(complete)
        return len(data)

    def _send(self, text: str) -> None:
        if text.strip():
            send_msg = getattr(self.worker, "send_msg", None)
            if send_msg is not None:
                send_msg(text.strip())
            else:
                self.worker.send("MSG", text.strip())

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        text, self.pending = self.pending, ""
        self._send(text)


def wait_for_end() -> None:
    """After DONE/ERROR/FATAL the master kills us; leave only if stdin closes."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass


class WorkerProtocol:
    """The protocol half of ``disco.worker.Worker`` (master-api.md 8.3)."""

    stderr = sys.stderr  # the real stderr: the protocol channel to the master

    @classmethod
    def _write(cls, type: str, payload: Any) -> None:
        cls._write_frames(encode_frame(type, dump_payload(payload)))

    @classmethod
    def _write_frames(cls, data: bytes) -> None:
        if _held is not None:
            _held.append(data)
            return
        out = getattr(cls.stderr, "buffer", None)
        if out is not None:
            out.write(data)
            out.flush()
        else:
            cls.stderr.write(data.decode("utf-8"))
            cls.stderr.flush()

    @classmethod
    def exchange(cls, type: str, payload: Any = "") -> tuple[str, Any]:
        """Send one message; return the reply's ``(type, payload)``."""
        global _held
        with _lock:
            cls._write(type, payload)
            if _held is not None:  # (``release`` inline: no other function to touch)
                held, _held = _held, None
                cls._write_frames(b"".join(held))  # with what was held, in one write
            if type in ("DONE", "ERROR", "FATAL"):
                return "", None  # no reply: the master kills the worker (8.7)
            _reader.settle()
            return _reader.read(REPLY_TIMEOUT)

    @classmethod
    def send_nowait(cls, type: str, payload: Any = "", keep: bool = False) -> None:
        """Send one message without waiting for its reply (master-api.md 8.9: replies
        come in request order): the reply is read before the next reply waited for, and
        dropped, or kept in order for ``kept_reply`` if ``keep``.  Only for messages
        whose reply cannot hold the worker back (not MSG above the rate limit)."""
        with _lock:
            cls._write(type, payload)
            _reader.owed.append(keep)

    @classmethod
    def send_all_nowait(cls, messages: list[tuple[str, Any, bool]]) -> None:
        """``send_nowait(type, payload, keep)`` of each message, written at once."""
        with _lock:
            data = b"".join(
                encode_frame(type, dump_payload(payload)) for type, payload, _keep in messages
            )
            cls._write_frames(data)
            _reader.owed.extend(keep for _type, _payload, keep in messages)

    @classmethod
    def hold(cls) -> bool:
        """Hold back the messages sent without waiting (``send_nowait``) from now on:
        they are written, in order and in one write, with the next message that waits
        for its reply or ends the task (DONE, ERROR, FATAL; ``exchange``), or by
        ``release``.  The byte stream is the same, in fewer writes (each one a wake-up
        of the node).  False if already holding."""
        global _held
        with _lock:
            if _held is not None:
                return False
            _held = []
            return True

    @classmethod
    def release(cls) -> None:
        """Write what ``hold`` held back (one write) and stop holding."""
        global _held
        with _lock:
            held, _held = _held, None
            if held:
                cls._write_frames(b"".join(held))

    @classmethod
    def kept_reply(cls) -> tuple[str, Any]:
        """The oldest kept reply of ``send_nowait(..., keep=True)`` (waits for it)."""
        with _lock:
            if _held is not None:
                cls.release()  # its message may be held
            while not _reader.kept:
                if not _reader.owed:
                    raise ProtocolError("No reply was kept")
                _reader.settle()
            return _reader.kept.popleft()

    @classmethod
    def send_msg(cls, text: str) -> None:
        """MSG ``text``: without waiting for the OK while this worker has sent so few
        that the master's rate limit cannot delay the reply (8.9: a delay starts above
        ``MSG_FREE`` messages in its queue, which never holds more than were sent)."""
        global _msgs_sent
        _msgs_sent += 1
        if _msgs_sent <= MSG_FREE:
            cls.send_nowait("MSG", text)
        else:
            cls.send("MSG", text)

    @classmethod
    def send(cls, type: str, payload: Any = "") -> Any:
        """Send one message and return the reply's payload."""
        return cls.exchange(type, payload)[1]

    @classmethod
    def get_task(cls) -> Any:
        return cls.task_from_reply(cls.exchange("TASK"))

    @classmethod
    def task_from_reply(cls, reply: tuple[str, Any]) -> Any:
        """The ``disco.task.Task`` of a TASK reply."""
        from disco.task import Task

        mtype, payload = reply
        if mtype != "TASK" or not isinstance(payload, dict):
            raise ProtocolError("Expected a TASK reply, got %s" % mtype)
        return Task(**payload)

    @classmethod
    def get_inputs(
        cls, done: bool = False, exclude: list[int] | None = None
    ) -> Iterator[IDedInput]:
        """The task's inputs as they become known (INPUT ``["exclude", seen]`` polls).

        Unlike 0.5, the ``exclude`` list is not shared between calls, so
        ``this_inputs()`` after a task read its inputs still lists them all.
        """
        seen = list(exclude or ())
        while True:
            if not seen and _reader.prefetched_inputs and (_reader.kept or _reader.owed):
                _reader.prefetched_inputs = False  # asked for at the start (taskrun)
                flag, inputs = cls.kept_reply()[1]
            else:
                flag, inputs = cls.send("INPUT", ["exclude", seen])
            for input_id, _status, label, replicas in inputs:
                if input_id in seen:
                    continue
                seen.append(input_id)
                if label != "all":
                    label = int(label)
                yield IDedInput(
                    (cls, input_id, label), replicas=[(rid, url) for rid, url in replicas]
                )
            if flag == "done":
                return

    @classmethod
    def get_input(cls, id: int) -> list[tuple[int, str]]:
        """Fresh replicas ``[(replica_id, url)]`` of input ``id``."""
        from disco.fileutils import Wait

        _flag, inputs = cls.send("INPUT", ["include", [id]])
        for input_id, status, _label, replicas in inputs:
            if input_id != id:
                continue
            if status == "busy":
                raise Wait()
            if status == "failed":
                raise DataError("Can't handle broken input", id)
            return [(rid, url) for rid, url in replicas]
        raise DataError("The master did not return input %s" % id, id)
