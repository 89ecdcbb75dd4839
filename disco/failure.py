"""Why a task attempt failed: one record shared by worker, node, master and client.

A ``Failure`` is built where the failure is understood best: the Python worker writes
what it knows (the user's exception, its traceback, the input being read) to the
attempt's *report file*; the node runtime adds what only it can see (exit code, signal,
the last lines of output, a crash traceback) and the task's identity; the master keeps
the last failure of each job and lists every failed attempt in ``jobinfo``; the client
turns it into the attributes of ``disco.error.JobError``.

The report file is a side channel that leaves the worker protocol (master-api.md 8)
untouched: its path is given to the worker in the ``DISCO_TASK_REPORT`` environment
variable; workers that do not know it simply never write it.  Faulthandler output of a
crashing Python worker goes to ``<report file>.crash``.

This module is imported by every task: stdlib only, no heavy imports.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from typing import Any

#: Environment variable naming the attempt's report file (set by the node runtime).
REPORT_ENV = "DISCO_TASK_REPORT"
#: How many trailing lines of a crashed worker's output are kept.
TAIL_LINES = 20


@dataclass
class Failure:
    """One failed attempt.

    ``kind`` says which class of failure it is: ``exception`` (the job's code raised),
    ``exit`` (``sys.exit`` or the process exited on its own), ``signal``, ``segfault``,
    ``memory``, ``output`` (a result that cannot be serialized), ``input`` (an input
    that cannot be read), ``version`` (Python version mismatch), ``code`` (the job's
    code could not be loaded on the node), ``protocol`` (the worker broke the protocol)
    or ``node`` (the node could not run the worker).
    """

    kind: str
    exc_type: str
    exc_message: str
    traceback: str = ""
    input: str | None = None
    output_tail: str = ""
    stage: str = ""
    taskid: int = -1
    host: str = ""
    attempt: int = 0  # counted from 1; 0 when unknown
    jobname: str = ""

    @property
    def headline(self) -> str:
        """``<ExcType>: <message>``: the first line of every report."""
        return "%s: %s" % (self.exc_type, self.exc_message) if self.exc_type else self.exc_message

    def where(self) -> str:
        """``in map task 0 on localhost (attempt 2), reading <url>``."""
        text = "in %s task %d on %s" % (self.stage or "?", self.taskid, self.host or "?")
        if self.attempt:
            text += " (attempt %d)" % self.attempt
        if self.input:
            text += ", reading %s" % self.input
        return text

    def text(self) -> str:
        """The report shown in events and in ``JobError``: headline, place, details."""
        parts = [self.headline, "  " + self.where()]
        if self.traceback:
            parts.append("Remote traceback:\n" + self.traceback.rstrip("\n"))
        if self.output_tail:
            parts.append("Last output of the worker:\n" + self.output_tail.rstrip("\n"))
        return "\n".join(parts)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Failure | None:
        """A ``Failure`` from ``to_json`` output; ``None`` if ``data`` is not one."""
        if not isinstance(data, dict) or not isinstance(data.get("exc_message"), str):
            return None
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None


def short_repr(obj: object, limit: int = 120) -> str:
    """``repr(obj)`` cut to ``limit`` characters (never raises)."""
    try:
        text = repr(obj)
    except Exception:
        text = "<%s object>" % type(obj).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tail(text: str, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` non-blank lines of ``text``."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


# -- the report file -----------------------------------------------------------------------
def read_report(path: str) -> dict[str, Any]:
    """What the worker wrote to its report file (``{}`` if nothing usable)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_crash(path: str) -> str:
    """Faulthandler output of a crashed worker (``<report>.crash``), or ``""``."""
    try:
        with open(path + ".crash", encoding="utf-8", errors="replace") as f:
            return f.read(64 * 1024)
    except OSError:
        return ""


def trim_crash(text: str) -> str:
    """Faulthandler output without the frames of Disco itself and of interpreter start-up."""
    disco_dir = os.path.dirname(os.path.abspath(__file__)) + os.sep
    return "\n".join(
        line
        for line in text.splitlines()
        if not (line.lstrip().startswith('File "') and (disco_dir in line or '"<frozen ' in line))
    )


def write_report(path: str, data: dict[str, Any]) -> None:
    """Replace the report file with ``data`` (never raises: reporting must not fail)."""
    try:
        body = json.dumps(data).encode("utf-8")
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        try:
            view = memoryview(body)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        pass
