"""Console rendering of job events while waiting (library.md 15 and 19.6).

``EventMonitor`` polls a job's events (by byte offset) and its ``jobinfo`` status, and
hands them to one writer chosen from ``DISCO_EVENTS`` by :func:`OutputStream`:

* falsy: :class:`EventWriter`, which prints nothing (and makes no requests);
* ``'json'``: :class:`JSONEventWriter`, one ``[timestamp, host, message]`` per line on stdout;
* ``'nocolor'`` or a handle that is not a colour terminal: :class:`TextEventWriter`,
  ``<timestamp> <host> <message>`` and status lines on stderr;
* anything else: :class:`ANSIEventWriter`, the coloured version on stderr.

The job object only needs ``name``, ``events(offset=...)`` and ``jobinfo()`` (the proxy
methods of ``disco.job.Job``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import IO, Any

logger = logging.getLogger(__name__)

__all__ = [
    "ANSIEventWriter",
    "EventMonitor",
    "EventWriter",
    "JSONEventWriter",
    "OutputStream",
    "TextEventWriter",
    "status_line",
]

# ANSI SGR codes
RESET = "\033[0m"
BOLD = "\033[1m"
RED = "\033[31m"
GREEN = "\033[32m"
BLUE = "\033[34m"
MAGENTA = "\033[35m"
CYAN = "\033[36m"
GREEN_BAR = "\033[42;30m"


def status_line(pipeline: list[list[Any]], last_failure: Any = None) -> str | None:
    """``Status: [<stage>] P pending, W waiting, R running, D done, F failed``.

    Describes the last pipeline row with any non-zero counter (library.md 19.6);
    ``None`` when there is none.  ``last_failure``, the last entry of jobinfo's
    ``failed_attempts``, adds ``; last failure: <task> attempt <n> on <host>: <reason>``
    when it is of the stage shown (so a task being retried says why).
    """
    for row in reversed(pipeline or []):
        if any(row[1:6]):
            line = format_status(row)
            task = last_failure.get("task") if isinstance(last_failure, dict) else None
            if row[5] and str(task).rpartition(":")[0] == row[0] and last_failure["reason"]:
                line += "; last failure: %s attempt %s on %s: %s" % (
                    last_failure.get("task"),
                    last_failure.get("attempt"),
                    last_failure.get("host"),
                    " ".join(str(last_failure["reason"]).split())[:200],
                )
            return line
    return None


def format_status(row: list[Any]) -> str:
    """The status line of one pipeline row ``[stage, pending, waiting, running, done,
    failed]``."""
    return "Status: [%s] %s pending, %s waiting, %s running, %s done, %s failed" % (
        row[0],
        *list(row[1:6]),
    )


class EventWriter:
    """The null writer: shows nothing (``DISCO_EVENTS`` off)."""

    enabled = False

    def __init__(self, handle: IO[str] | None = None) -> None:
        self.handle = handle

    def heading(self, jobname: str) -> None:
        """Called once, before the first event of ``jobname``."""

    def event(self, timestamp: str, host: str, message: str) -> None:
        """Show one event."""

    def status(self, line: str) -> None:
        """Show a changed status line."""

    def cleanup(self) -> None:
        """Finish the output (flush)."""
        if self.handle is not None:
            try:
                self.handle.flush()
            except (OSError, ValueError):
                pass

    def write(self, text: str) -> None:
        assert self.handle is not None
        self.handle.write(text)
        self.handle.flush()


class JSONEventWriter(EventWriter):
    """Each event as ``json.dumps([timestamp, host, message])`` on stdout."""

    enabled = True

    def __init__(self, handle: IO[str] | None = None) -> None:
        super().__init__(handle if handle is not None else sys.stdout)

    def event(self, timestamp: str, host: str, message: str) -> None:
        self.write(json.dumps([timestamp, host, message]) + "\n")


class TextEventWriter(EventWriter):
    """``<timestamp> <host> <message>`` per event, plus status lines, on stderr."""

    enabled = True

    def __init__(self, handle: IO[str] | None = None) -> None:
        super().__init__(handle if handle is not None else sys.stderr)

    def event(self, timestamp: str, host: str, message: str) -> None:
        self.write("%s %s %s\n" % (timestamp, host, message))

    def status(self, line: str) -> None:
        self.write("%s\n" % line)


class ANSIEventWriter(TextEventWriter):
    """The coloured rendering for colour terminals (library.md 19.6)."""

    def heading(self, jobname: str) -> None:
        self.write("%sJob %s%s\n" % (BOLD, jobname, RESET))

    def event(self, timestamp: str, host: str, message: str) -> None:
        self.write(
            "%s%s%s %s%-10s%s %s\n"
            % (GREEN, timestamp, RESET, BLUE, host, RESET, self.colour(message))
        )

    def status(self, line: str) -> None:
        self.write("%s%s%s\n" % (CYAN, line, RESET))

    @staticmethod
    def colour(message: str) -> str:
        """Colour a message by its prefix: ERROR red, WARN magenta, READY a green bar."""
        if message.startswith("ERROR") or message.startswith("FATAL"):
            return "%s%s%s" % (RED, message, RESET)
        if message.startswith("WARN"):
            return "%s%s%s" % (MAGENTA, message, RESET)
        if message.startswith("READY"):
            return "%s%s%s" % (GREEN_BAR, message, RESET)
        return message


def _is_colour_terminal(handle: Any) -> bool:
    try:
        tty = bool(handle.isatty())
    except (AttributeError, ValueError):
        return False
    return tty and os.environ.get("TERM", "") not in ("", "dumb")


def OutputStream(format: Any, handle: IO[str] | None = None) -> EventWriter:  # noqa: N802 - 0.5 name
    """The writer for a ``DISCO_EVENTS`` value (see the module docstring)."""
    if not format:
        return EventWriter(handle)
    if format == "json":
        return JSONEventWriter()
    handle = handle if handle is not None else sys.stderr
    if format == "nocolor" or not _is_colour_terminal(handle):
        return TextEventWriter(handle)
    return ANSIEventWriter(handle)


class EventMonitor:
    """Shows a job's new events (and status changes) each time it is refreshed.

    :param job: the job (``name``, ``events(offset=...)``, ``jobinfo()``).
    :param format: a ``DISCO_EVENTS`` value (see :func:`OutputStream`).
    :param poll_interval: seconds :meth:`refresh` sleeps after showing events.
    """

    def __init__(
        self, job: Any, format: Any = None, poll_interval: float = 2, handle: IO[str] | None = None
    ) -> None:
        self.job = job
        self.poll_interval = poll_interval
        self.output = OutputStream(format, handle)
        self.offset = 0
        self.prev_status: str | None = None
        self._heading_done = False

    @property
    def isenabled(self) -> bool:
        return self.output.enabled

    @property
    def events(self) -> Any:
        """The job's events after the ones already shown: ``(offset, event)`` pairs."""
        return self.job.events(offset=self.offset)

    @property
    def stats(self) -> list[Any] | None:
        """The job's current pipeline row ``[stage, pending, waiting, running, done,
        failed]``: the last stage with a non-zero counter, else the first (asks the
        master); ``None`` for a job without stages."""
        pipeline = list(self.job.jobinfo().get("pipeline") or [])
        for row in reversed(pipeline):
            if any(row[1:6]):
                return list(row)
        return list(pipeline[0]) if pipeline else None

    @property
    def status(self) -> str | None:
        """``Status: [<stage>] P pending, ...`` of :attr:`stats` (asks the master)."""
        row = self.stats
        return None if row is None else format_status(row)

    def log_events(self) -> None:
        """Show the events since the last call."""
        for offset, (timestamp, host, message) in self.events:
            self.offset = offset
            self.output.event(timestamp, host, message)

    def poll(self) -> None:
        """Show the events since the last poll and the status line if it changed."""
        if not self.isenabled:
            return
        if not self._heading_done:
            self.output.heading(self.job.name)
            self._heading_done = True
        try:
            self.log_events()
            info = self.job.jobinfo()
            attempts = info.get("failed_attempts") or [None]
            line = status_line(info.get("pipeline", []), attempts[-1])
        except Exception as e:  # the display must never break waiting
            logger.debug("event monitor poll of %s failed: %s", self.job.name, e)
            return
        if line and line != self.prev_status:
            self.prev_status = line
            self.output.status(line)

    def refresh(self) -> None:
        """:meth:`poll`, then sleep ``poll_interval`` seconds when output is enabled."""
        if self.isenabled:
            self.poll()
            time.sleep(self.poll_interval)

    def cleanup(self) -> None:
        """Finish the output."""
        self.output.cleanup()
