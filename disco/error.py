"""Public exception tree of Disco 0.5: DiscoError > JobError, DataError > CommError.

Added here: ``MasterUnreachable`` (a ``CommError``: no master answers), ``JobShippingError`` (a job's code cannot be sent to the nodes),
``OutputError`` (a task result cannot be serialized) and ``PythonVersionError``.
"""

from __future__ import annotations

from typing import Any

#: ``JobError`` attributes filled from the master's report of the failure that ended a job.
FAILURE_FIELDS = ("exc_type", "exc_message", "traceback", "stage", "taskid", "host", "input")


class DiscoError(Exception):
    """Generic Disco error (submission failures, bad inputs, bad settings, ...)."""


class JobError(DiscoError):
    """A job failed, timed out, or could not be waited for.

    ``.job`` and ``.message`` are kept (0.5).  When the job died of a task failure the
    master reported, ``message`` is the failure report, which starts with the remote
    exception's ``<type>: <message>``, and the details are attributes: ``exc_type``,
    ``exc_message``, ``traceback`` (the remote traceback of the job's code), ``stage``,
    ``taskid``, ``host``, ``input`` (the input URL being read, if known), ``attempts``
    (failed attempts of that task) and ``kind`` (which class of failure, see
    ``disco.failure.Failure``).  Without such a report they are ``None`` and ``str()``
    is 0.5's ``"Job <name> failed: <message>"``.
    """

    def __init__(self, job: Any, message: str, **details: Any) -> None:
        super().__init__(job, message)
        self.job = job
        self.message = message
        self.details = details
        self.kind: str | None = details.get("kind")
        self.attempts: int | None = details.get("attempts")
        for name in FAILURE_FIELDS:
            setattr(self, name, details.get(name))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_job_error, (type(self), self.job, self.message, self.details))

    def __str__(self) -> str:
        name = getattr(self.job, "name", self.job)
        if not self.exc_type:
            return "Job %s failed: %s" % (name, self.message)
        attempts = "" if self.attempts is None else ", %d failed attempt(s)" % self.attempts
        return "%s\n  (job %s%s)" % (self.message, name, attempts)


def _rebuild_job_error(cls: type, job: Any, message: str, details: dict[str, Any]) -> JobError:
    return cls(job, message, **details)


class DataError(DiscoError):
    """A resource could not be read; inside a task this is a recoverable error (retried)."""

    def __init__(self, msg: str, url: Any, code: int | None = None) -> None:
        super().__init__(msg, url, code)
        self.msg = msg
        self.url = url
        self.code = code

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.msg, self.url, self.code))

    def __str__(self) -> str:
        msg = self.msg
        if self.code is not None:
            msg = "%s (%s)" % (msg, self.code)
        return "Unable to access resource (%s): %s" % (self.url, msg)


class CommError(DataError):
    """An HTTP request failed; ``code`` is the HTTP status, or ``None`` without a response."""


class MasterUnreachable(CommError):
    """No Disco master answers at ``url`` (connection refused, unknown host, or no reply
    after the retries): the master is not running, or ``DISCO_MASTER`` names the wrong one.
    ``master`` is the master's URL."""

    def __init__(self, msg: str, url: Any, code: int | None = None, master: str = "") -> None:
        super().__init__(msg, url, code)
        self.master = master

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_unreachable, (self.msg, self.url, self.code, self.master))

    def __str__(self) -> str:
        return self.msg


def _rebuild_unreachable(msg: str, url: Any, code: int | None, master: str) -> MasterUnreachable:
    return MasterUnreachable(msg, url, code, master)


class JobShippingError(DiscoError, TypeError):
    """Part of a job cannot be sent to the nodes (raised by ``Job.run``, before submission).

    ``.path`` says where the object was found (e.g. ``parameter 'map' -> closure
    variable 'log' of function make_map.<locals>.fun``), ``.obj`` is the object.
    """

    def __init__(self, message: str, path: str = "", obj: Any = None) -> None:
        super().__init__(message)
        self.path = path
        self.obj = obj


class OutputError(DiscoError):
    """A record a task produced cannot be written (usually: it cannot be pickled)."""


class PythonVersionError(DiscoError):
    """The job was packed by a different Python version than the node runs."""
