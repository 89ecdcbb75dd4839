"""Records of the coordinator: jobs, stages, tasks and task inputs, with read-only views.

Owns the in-memory shape of a job (master-api.md 7.1) and the queries answered from it
without changing it: jobinfo counters (3.1), INPUT replies and RETRY replica lists
(8.5), results in the 3.5 shape.  Changes happen only in ``coordinator.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from disco.backends.base import InputEntry, Replica, TaskOutput
from disco.master.grouping import DataItem, DirItem, Item, TaskInput, url_host
from disco.master.jobpack import DataInput, JobSpec, StageSpec
from disco.master.states import JobStatus, RestoredTask, TaskState


@dataclass
class InputRecord:
    """One input of a task; ``failed`` maps replica id -> time of its last failure."""

    label: int | str
    urls: tuple[str, ...]
    failed: dict[int, float] = field(default_factory=dict)

    def replicas(self) -> list[Replica]:
        """Replicas, never-failed first, then least recently failed (8.5)."""
        order = sorted(
            range(len(self.urls)),
            key=lambda rid: (rid in self.failed, self.failed.get(rid, 0.0), rid),
        )
        return [Replica(rid, self.urls[rid]) for rid in order]


@dataclass
class Task:
    job: str
    taskid: int
    stage: str
    grouping: str
    group: tuple[int, str]
    inputs: list[InputRecord]
    inputs_done: bool
    pinned: str | None = None  # 7.3: first run only
    state: TaskState = "waiting"
    attempt: int = -1  # the current (or last) attempt; the first is 0
    failures: int = 0
    avoid: set[str] = field(default_factory=set)
    # Hosts where the task failed for want of space -> bytes it needs free there; it
    # does not start there again until that much is free (issue 8, 4).
    no_space: dict[str, int] = field(default_factory=dict)
    no_space_since: float = 0.0  # when the last host was added
    host: str | None = None
    outputs: tuple[TaskOutput, ...] = ()
    # Node loss (``disco.master.lostnodes``): the outputs of the run whose outputs were
    # lost, until the task has finished again (then its consumers get the new URLs);
    # the producers that run again before this task may start.
    lost_outputs: tuple[TaskOutput, ...] | None = None
    held_by: set[int] = field(default_factory=set)
    history: list[tuple[int, str, str]] = field(default_factory=list)  # (event id, from, to)
    # Running, and its worker was killed after DONE (``AttemptExited``): it no longer
    # counts in its node's ``running`` (the slot went to the next task).
    slot_freed: bool = False

    @property
    def label(self) -> str:
        return "%s:%d" % (self.stage, self.taskid)

    def input_hosts(self) -> list[str]:
        return [url_host(u) for inp in self.inputs for u in inp.urls]

    def add_input(self, inp: TaskInput) -> None:
        self.inputs.append(InputRecord(inp.label, inp.urls))


@dataclass
class Stage:
    spec: StageSpec
    index: int
    taskids: list[int] = field(default_factory=list)
    opened: bool = False
    finished: bool = False
    reopened: bool = False  # it had finished; tasks run again after a node loss
    opened_at: float = 0.0
    running: int = 0
    done: int = 0
    failed: int = 0  # failed attempts (3.1)
    groups: dict[tuple[object, ...], int] = field(default_factory=dict)
    done_order: list[int] = field(default_factory=list)  # task ids in completion order

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass
class Job:
    name: str
    spec: JobSpec
    seq: int
    submitted: float
    status: JobStatus = "active"
    stages: list[Stage] = field(default_factory=list)
    tasks: dict[int, Task] = field(default_factory=dict)
    # Ordered set of task ids.  An OrderedDict: a plain dict taken from the front keeps
    # the removed slots, so every scan from the front (each task start) crossed all the
    # tasks started before: quadratic for a big job.
    waiting: dict[int, None] = field(default_factory=OrderedDict)
    next_taskid: int = 0
    items: list[Item] | None = None  # job inputs once dir:// indexes are resolved
    results: list[Any] | None = None  # replica lists, or ["tag://disco:results:<job>"]
    saving: bool = False  # save_results: the results tag is being written (ddfs.md 7.2)
    stage_results: dict[str, list[list[str]]] = field(default_factory=dict)
    running: int = 0
    priority: float = 0.0
    boost: float = 0.0
    restoring: list[RestoredTask] | None = None  # finished before a master restart

    def stage(self, name: str) -> Stage:
        for s in self.stages:  # a loop, not ``next`` over a generator: called per task
            if s.name == name:
                return s
        raise StopIteration(name)  # what ``next`` raised: callers ask for a stage it has

    def earlier_running(self, stage: Stage) -> int | None:
        """Running tasks of unfinished earlier stages; ``None`` if all earlier finished."""
        # A stage reopened after a node loss does not throttle later stages (7.4 is about
        # stages fed as they go): their tasks that are not held have all their inputs.
        earlier = [s for s in self.stages[: stage.index] if not s.finished and not s.reopened]
        if not earlier:
            return None
        return sum(s.running for s in earlier)

    def admissible(self, stage: Stage) -> bool:
        """May a task of ``stage`` start now (7.4: max_cores, concurrent throttling)?"""
        if self.running >= self.spec.max_cores:
            return False
        earlier = self.earlier_running(stage)
        return earlier is None or 2 * stage.running < earlier

    def counters(self) -> list[list[object]]:
        """jobinfo pipeline rows ``[stage, pending, waiting, running, done, failed]`` (3.1)."""
        rows: list[list[object]] = []
        for stage in self.stages:
            total = len(stage.taskids)
            queued = sum(1 for t in stage.taskids if self.tasks[t].state == "waiting")
            if self.status != "active":
                pending = 0
            elif not self.admissible(stage):
                pending = queued
            else:
                pending = max(0, queued - (self.spec.max_cores - self.running))
            waiting = total - stage.running - stage.done
            rows.append([stage.name, pending, waiting, stage.running, stage.done, stage.failed])
        return rows

    def running_hosts(self) -> list[str]:
        return [t.host for t in self.tasks.values() if t.state == "running" and t.host]

    def input_urls(self) -> list[str]:
        """jobinfo ``inputs``: every replica URL of the data inputs (v1 dirs omitted, 3.1)."""
        return [u for i in self.spec.inputs if isinstance(i, DataInput) for u in i.urls]


# json.dumps(..., separators=(",", ":")), built once (a signature per finished task)
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def task_signature(task: Task) -> str:
    """What a task is (stage, grouping, group, inputs in order) as a short hash.

    A task restored after a master restart counts as done only if the rebuilt task has
    the signature of the one that finished (``disco.master.recovery``)."""
    text = _compact_json(
        [
            task.stage,
            task.grouping,
            list(task.group),
            [[inp.label, list(inp.urls)] for inp in task.inputs],
        ]
    )
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def output_items(outputs: tuple[TaskOutput, ...]) -> list[Item]:
    """A finished task's outputs as items for the next stage (8.6)."""
    items: list[Item] = []
    for out in outputs:
        if out.kind == "dir":
            items.append(DirItem(out.url, tuple(out.labels)))
        else:
            items.append(DataItem(out.label, out.size, out.urls))
    return items


def result_entries(tasks: list[Task]) -> list[list[str]]:
    """One replica list per output, tasks in the given order (3.5)."""
    return [list(out.urls) for task in tasks for out in task.outputs]


def input_reply(
    task: Task, mode: Literal["all", "include", "exclude"], ids: list[int]
) -> tuple[Literal["done", "more"], list[InputEntry]]:
    """The INPUT reply for a task's current inputs (8.5)."""
    wanted = set(ids)
    entries: list[InputEntry] = []
    for input_id, inp in enumerate(task.inputs):
        if mode == "include" and input_id not in wanted:
            continue
        if mode == "exclude" and input_id in wanted:
            continue
        entries.append(InputEntry(input_id, inp.label, tuple(inp.replicas())))
    return ("done" if task.inputs_done else "more"), entries


def retry_replicas(task: Task, input_id: int, replica_ids: list[int]) -> list[Replica] | None:
    """After INPUT_ERR: the replicas not in the list, least recently failed first, or None."""
    if not 0 <= input_id < len(task.inputs):
        return None
    failed = set(replica_ids)
    rest = [r for r in task.inputs[input_id].replicas() if r.replica_id not in failed]
    return rest or None
