"""Every task attempt of a job: node, start, end and outcome (the web UI's timeline).

Owns, per job, the attempts the runtime started (bounded per job), each with the node it
ran on, its start and end time (Unix seconds) and how it ended: ``done``, ``failed`` or
``killed``; ``running`` while it runs.  Listeners (the Prometheus metrics) are told of
each start and end.  Kept in memory only: after a master restart earlier jobs have no
timeline.  ``GET /disco/ctrl/task_attempts`` serves it (an addition beyond 0.5).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

MAX_PER_JOB = 10000  # attempts kept per job; the oldest go first

Outcome = Literal["running", "done", "failed", "killed"]


@dataclass
class Attempt:
    """One attempt of one task (``attempt`` counted from 1, as in the events)."""

    job: str
    stage: str
    taskid: int
    attempt: int
    host: str
    start: float
    end: float | None = None
    outcome: Outcome = "running"
    reason: str = ""

    @property
    def duration(self) -> float:
        return 0.0 if self.end is None else max(0.0, self.end - self.start)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        del data["job"]
        return data


Listener = Callable[[Attempt], None]


class AttemptLog:
    """The attempts of every job the master knows."""

    def __init__(self) -> None:
        self._jobs: dict[str, dict[tuple[int, int], Attempt]] = {}
        self.on_start: list[Listener] = []
        self.on_end: list[Listener] = []

    def started(
        self, job: str, stage: str, taskid: int, attempt: int, host: str, now: float
    ) -> None:
        """An attempt started (``attempt`` counted from 0, as in ``StartTask``)."""
        attempts = self._jobs.setdefault(job, {})
        record = Attempt(job, stage, taskid, attempt + 1, host, now)
        attempts[(taskid, attempt)] = record
        if len(attempts) > MAX_PER_JOB:
            del attempts[next(iter(attempts))]
        for listener in self.on_start:
            listener(record)

    def ended(
        self, job: str, taskid: int, attempt: int, outcome: Outcome, now: float, reason: str = ""
    ) -> None:
        """The attempt ended; an attempt that already ended (or is unknown) is left alone."""
        record = self._jobs.get(job, {}).get((taskid, attempt))
        if record is None or record.end is not None:
            return
        record.end, record.outcome, record.reason = now, outcome, reason[:500]
        for listener in self.on_end:
            listener(record)

    def of(self, job: str) -> list[Attempt]:
        return list(self._jobs.get(job, {}).values())

    def forget(self, job: str) -> None:
        self._jobs.pop(job, None)
