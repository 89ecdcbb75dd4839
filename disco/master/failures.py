"""What the master remembers of a job's failures (issue: failures a user can act on).

Owns, per job: every failed task attempt (bounded), with its node and why it failed,
and the full report of the last failure, which is what ended the job when it is
``dead``.  ``jobinfo`` shows both as extra fields (``failed_attempts``,
``last_failure``); the 0.5 fields are unchanged.  Saved with the job (SQLite), so they
survive a master restart.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from disco.failure import Failure

MAX_ATTEMPTS = 200  # failed attempts listed per job


def worker_text_failure(message: str) -> Failure:
    """A ``Failure`` for a worker that reported only text (not a Python worker)."""
    first, _, rest = message.partition("\n")
    return Failure("worker", "", first, traceback=rest)


class FailureLog:
    """Failed attempts of one job and the report of the last failure."""

    def __init__(self) -> None:
        self.attempts: deque[dict[str, Any]] = deque(maxlen=MAX_ATTEMPTS)
        self.per_task: Counter[int] = Counter()
        self.last: dict[str, Any] | None = None

    def attempt_failed(
        self, severity: str, message: str, failure: Failure | None, when: str, **where: Any
    ) -> None:
        """Record a failed attempt; ``where`` has stage, taskid, attempt, host, jobname."""
        if failure is None:
            failure = worker_text_failure(message)
        for key, value in where.items():
            setattr(failure, key, value)
        self.per_task[failure.taskid] += 1
        self.attempts.append(
            {
                "task": "%s:%d" % (failure.stage, failure.taskid),
                "attempt": failure.attempt,
                "host": failure.host,
                "severity": severity,
                "kind": failure.kind,
                "reason": failure.headline,
                "time": when,
            }
        )
        self.last = dict(
            failure.to_json(),
            severity=severity,
            message=message,
            attempts=self.per_task[failure.taskid],
        )

    def job_failed(self, failure: Failure, severity: str = "fatal") -> None:
        """The job ended for a reason that is not one task attempt (kill, inputs)."""
        self.last = dict(
            failure.to_json(), severity=severity, message=failure.headline, attempts=None
        )

    def fields(self) -> dict[str, Any]:
        return {"failed_attempts": list(self.attempts), "last_failure": self.last}

    def to_json(self) -> dict[str, Any]:
        return dict(self.fields(), per_task={str(k): v for k, v in self.per_task.items()})

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FailureLog:
        log = cls()
        log.attempts.extend(data.get("failed_attempts") or [])
        log.last = data.get("last_failure")
        log.per_task.update({int(k): v for k, v in (data.get("per_task") or {}).items()})
        return log


NO_FAILURES: dict[str, Any] = {"failed_attempts": [], "last_failure": None}
