"""Public exception tree of Disco 0.5: DiscoError > JobError, DataError > CommError."""

from __future__ import annotations

from typing import Any


class DiscoError(Exception):
    """Generic Disco error (submission failures, bad inputs, bad settings, ...)."""


class JobError(DiscoError):
    """A job failed, timed out, or could not be waited for.

    ``str()`` is ``"Job <name> failed: <message>"``; ``.job`` and ``.message`` are kept.
    """

    def __init__(self, job: Any, message: str) -> None:
        super().__init__(job, message)
        self.job = job
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job, self.message))

    def __str__(self) -> str:
        name = getattr(self.job, "name", self.job)
        return "Job %s failed: %s" % (name, self.message)


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
