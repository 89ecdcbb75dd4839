"""The coordinator's vocabulary: states, events (stimuli) and instructions.

Events are what the outside world tells the coordinator (``runtime.py`` builds them from
HTTP requests, backend results and timers); instructions are what the coordinator asks
the runtime to do.  All are frozen dataclasses; time arrives as the ``now`` field
(Unix seconds), the coordinator never reads a clock.  Each is made a dataclass at its
first use (``disco.lazydataclass``): most runs build few of them.
"""

from __future__ import annotations

from dataclasses import field
from typing import Literal

from disco.backends.base import TaskOutput
from disco.lazydataclass import lazy_dataclass
from disco.master.jobpack import JobSpec

JobStatus = Literal["active", "ready", "dead"]
# waiting: wants a slot; sleeping: retry delay (10.3); running: an attempt runs;
# done: finished (outputs recorded); killed: the job ended before the task did.
TaskState = Literal["waiting", "sleeping", "running", "done", "killed"]
FailureKind = Literal["error", "fatal"]


# -- events ------------------------------------------------------------------------------
@lazy_dataclass(frozen=True)
class JobSubmitted:
    job: str
    spec: JobSpec
    now: float


@lazy_dataclass(frozen=True)
class InputsResolved:
    """The v1 ``dir://`` input indexes were read: url -> ((label, size), ...) (6.4)."""

    job: str
    labels: dict[str, tuple[tuple[int, int], ...]] = field(hash=False)
    now: float = 0.0


@lazy_dataclass(frozen=True)
class InputsFailed:
    job: str
    message: str
    now: float


@lazy_dataclass(frozen=True)
class AttemptDone:
    job: str
    taskid: int
    attempt: int
    outputs: tuple[TaskOutput, ...]
    duration: float
    now: float


@lazy_dataclass(frozen=True)
class AttemptExited:
    """The worker of a running attempt sent DONE and has been killed (master-api.md 8.7):
    the node's slot is free for the next task while the node still syncs the attempt's
    index file; ``AttemptDone`` (or ``AttemptFailed``) follows."""

    job: str
    taskid: int
    attempt: int
    now: float


@lazy_dataclass(frozen=True)
class AttemptFailed:
    job: str
    taskid: int
    attempt: int
    kind: FailureKind
    message: str
    now: float


@lazy_dataclass(frozen=True)
class RetryDue:
    """The retry delay of a task ran out (10.3)."""

    job: str
    taskid: int
    now: float


@lazy_dataclass(frozen=True)
class InputFailed:
    """INPUT_ERR from a worker: these replicas failed now (8.5)."""

    job: str
    taskid: int
    input_id: int
    replica_ids: tuple[int, ...]
    now: float


@lazy_dataclass(frozen=True)
class KillRequested:
    """``kill_job`` (forget=False) or ``clean_job``/``purge_job`` (forget=True), 10.2."""

    job: str
    now: float
    forget: bool = False


@lazy_dataclass(frozen=True)
class NodesConfigured:
    """The config table or the blacklist changed (3.4): ``(host, max_workers)`` rows."""

    nodes: tuple[tuple[str, int], ...]
    blacklist: frozenset[str]
    connected: frozenset[str]
    now: float = 0.0


@lazy_dataclass(frozen=True)
class NodeLost:
    """``host`` left the cluster (disconnected, gone from the backend's node set or the
    config table): its running attempts and the outputs stored on it are lost."""

    host: str
    now: float


@lazy_dataclass(frozen=True)
class NodeConnected:
    host: str
    now: float


@lazy_dataclass(frozen=True)
class SettingsChanged:
    max_failure_rate: int
    now: float = 0.0


@lazy_dataclass(frozen=True)
class Tick:
    """Once a second: fair-share priorities are updated (10.5)."""

    now: float


@lazy_dataclass(frozen=True)
class ResultsSaved:
    """The results tag of a ``save_results`` job was written (``error`` is ``None``), or
    writing it failed with ``error`` (ddfs.md 7.2)."""

    job: str
    error: str | None
    now: float


@lazy_dataclass(frozen=True)
class RestoredTask:
    """A task that had finished before the master restarted (``disco.master.recovery``).

    ``signature`` is ``stages.task_signature`` of the task as it was: the restored task
    is marked done only if the rebuilt task has the same one."""

    taskid: int
    signature: str
    attempt: int
    host: str
    outputs: tuple[TaskOutput, ...]


@lazy_dataclass(frozen=True)
class JobRestored:
    """An ``active`` job found in the store at start-up: rebuild it from its spec and
    mark done, in completion order, the tasks that had finished (``done``)."""

    job: str
    spec: JobSpec
    submitted: float
    done: tuple[RestoredTask, ...]
    now: float


@lazy_dataclass(frozen=True)
class NodeFull:
    """An attempt of task ``taskid`` of ``job`` on ``host`` failed with "No space left
    on device".

    ``disk``: the mount point holding the node's data; ``free``: bytes free there now;
    ``needed``: bytes that must be free before the task starts on the node again.
    """

    job: str
    taskid: int
    host: str
    disk: str
    free: int
    needed: int
    now: float


@lazy_dataclass(frozen=True)
class NodeSpaceBack:
    """A full node has ``free`` bytes now: the tasks that need at most that much may
    start there again."""

    host: str
    free: int
    now: float


Event = (
    JobSubmitted
    | JobRestored
    | InputsResolved
    | InputsFailed
    | AttemptDone
    | AttemptExited
    | AttemptFailed
    | RetryDue
    | InputFailed
    | KillRequested
    | NodesConfigured
    | NodeLost
    | NodeConnected
    | SettingsChanged
    | Tick
    | ResultsSaved
    | NodeFull
    | NodeSpaceBack
)


# -- instructions ------------------------------------------------------------------------
@lazy_dataclass(frozen=True)
class StartTask:
    job: str
    taskid: int
    attempt: int
    host: str
    stage: str
    grouping: str
    group: tuple[int, str]
    save_results: bool = False


@lazy_dataclass(frozen=True)
class KillTask:
    job: str
    taskid: int
    attempt: int


@lazy_dataclass(frozen=True)
class AppendEvent:
    job: str
    text: str
    host: str = "master"


@lazy_dataclass(frozen=True)
class ResolveInputs:
    """Download these v1 ``dir://`` index files, then send ``InputsResolved``."""

    job: str
    urls: tuple[str, ...]


@lazy_dataclass(frozen=True)
class ScheduleRetry:
    job: str
    taskid: int
    delay: float


@lazy_dataclass(frozen=True)
class InputsChanged:
    """A task got new inputs or its input set became complete: answer deferred INPUTs."""

    job: str
    taskid: int


@lazy_dataclass(frozen=True)
class SaveJob:
    """Persist the job's status, results and stage results."""

    job: str


@lazy_dataclass(frozen=True)
class SaveTask:
    """Persist a finished task's outputs (so a restarted master need not re-run it)."""

    job: str
    taskid: int


@lazy_dataclass(frozen=True)
class ForgetTask:
    """A finished task runs again (its outputs were lost with a node): drop its saved
    row, so a restarted master does not bring the lost outputs back."""

    job: str
    taskid: int


@lazy_dataclass(frozen=True)
class SaveResults:
    """Replace the urls of ``disco:results:<job>`` by ``results``, then send
    ``ResultsSaved`` (ddfs.md 7.2)."""

    job: str
    results: tuple[tuple[str, ...], ...]


@lazy_dataclass(frozen=True)
class JobFinished:
    job: str
    status: JobStatus


@lazy_dataclass(frozen=True)
class JobForgotten:
    job: str


@lazy_dataclass(frozen=True)
class JobFailure:
    """The job ends ``dead`` for a reason that is no single attempt: keep ``message`` as
    its last failure (``jobinfo`` ``last_failure``, ``JobError``)."""

    job: str
    kind: str
    exc_type: str
    message: str


Instruction = (
    StartTask
    | KillTask
    | AppendEvent
    | ResolveInputs
    | ScheduleRetry
    | InputsChanged
    | SaveJob
    | SaveTask
    | ForgetTask
    | SaveResults
    | JobFinished
    | JobForgotten
    | JobFailure
)


class InvalidTransition(Exception):
    """A task was asked to move between states the table does not allow."""

    def __init__(self, job: str, taskid: int, start: str, finish: str, history: list) -> None:
        super().__init__(job, taskid, start, finish, history)
        self.job, self.taskid, self.start, self.finish = job, taskid, start, finish
        self.history = history

    def __str__(self) -> str:
        return "task %s:%d cannot go from %s to %s (history: %r)" % (
            self.job,
            self.taskid,
            self.start,
            self.finish,
            self.history[-10:],
        )
