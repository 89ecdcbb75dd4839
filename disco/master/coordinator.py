"""The job coordinator: a pure state machine for every job of the master.

``Coordinator.handle(event) -> list[Instruction]`` is the only way state changes.  It
implements master-api.md 7 (stages, task ids, groupings, pinning, concurrent stages and
``max_cores``), 10.2-10.5 (kill/clean, retries, node loss, scheduling through
``scheduler.py``) and the master's events of 4.4.  No asyncio, no I/O, no clock: time is
the ``now`` field of events; the retry jitter comes from an injected ``random.Random``.
``validate()`` checks the invariants; tests call it after every event.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from disco.backends.base import TaskOutput
from disco.master import lostnodes, retrypolicy, scheduler
from disco.master.grouping import DataItem, DirItem, Item, TaskInput, assign, group_items
from disco.master.jobpack import DataInput, JobSpec
from disco.master.stages import Job, Stage, Task, output_items, result_entries, task_signature
from disco.master.states import (
    AppendEvent,
    AttemptDone,
    AttemptExited,
    AttemptFailed,
    Event,
    ForgetTask,
    InputFailed,
    InputsChanged,
    InputsFailed,
    InputsResolved,
    Instruction,
    InvalidTransition,
    JobFailure,
    JobFinished,
    JobForgotten,
    JobRestored,
    JobSubmitted,
    KillRequested,
    KillTask,
    NodeConnected,
    NodeFull,
    NodeLost,
    NodesConfigured,
    NodeSpaceBack,
    ResolveInputs,
    ResultsSaved,
    RetryDue,
    SaveJob,
    SaveResults,
    SaveTask,
    ScheduleRetry,
    SettingsChanged,
    StartTask,
    TaskState,
    Tick,
)

# Allowed task moves (anything else raises InvalidTransition with the task's history).
_TRANSITIONS: frozenset[tuple[str, str]] = frozenset(
    {
        ("new", "waiting"),
        ("waiting", "running"),
        ("waiting", "done"),  # finished before a master restart (JobRestored)
        ("running", "done"),
        ("running", "sleeping"),  # recoverable failure, retry after a delay (10.3)
        ("sleeping", "waiting"),
        ("waiting", "killed"),
        ("sleeping", "killed"),
        ("running", "killed"),
        # node loss (lostnodes.py): an attempt on a lost node, or a consumer stopped
        # because its input is lost, runs again at once; a finished task whose outputs
        # were lost runs again.
        ("running", "waiting"),
        ("done", "waiting"),
    }
)


def format_duration(seconds: float) -> str:
    """``H:MM:SS.mmm``, hours unpadded (4.4)."""
    millis = max(0, round(seconds * 1000))
    secs, ms = divmod(millis, 1000)
    mins, secs = divmod(secs, 60)
    hours, mins = divmod(mins, 60)
    return "%d:%02d:%02d.%03d" % (hours, mins, secs, ms)


def saves_to_ddfs(spec: JobSpec) -> bool:
    """Does the job save its results in DDFS (``save_results`` with ``save_info`` ddfs)?"""
    return spec.save_results and spec.save_info.startswith("ddfs")


def results_tag(job: str) -> str:
    """``disco:results:<job>`` (ddfs.md 1.12)."""
    return "disco:results:%s" % job


def format_bytes(n: int) -> str:
    """``512 bytes``, ``3.0 KiB``, ``4.5 MiB``, ``1.2 GiB``."""
    if n < 1024:
        return "%d bytes" % n
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024.0
        if value < 1024.0 or unit == "TiB":
            break
    return "%.1f %s" % (value, unit)


def _seconds(value: float) -> str:
    return "%d" % value if float(value).is_integer() else "%.3f" % value


class Coordinator:
    """All jobs, stages, tasks and nodes of one master."""

    def __init__(
        self,
        *,
        policy: str = "fair",
        alpha: float = 0.001,
        retry_delay: float | None = None,
        max_failure_rate: int = 100,
        rng: random.Random | None = None,
        full_grace: float = 10.0,
    ) -> None:
        self.policy = policy
        self.alpha = alpha
        self.retry_delay = retry_delay
        self.max_failure_rate = max_failure_rate
        self.rng = rng or random.Random(0)
        # How long every node may stay full before the jobs waiting for one fail.
        self.full_grace = full_grace
        self.jobs: dict[str, Job] = {}
        self.nodes: dict[str, scheduler.NodeState] = {}
        # (job, taskid) of the tasks a node had no space for: what each tick checks,
        # instead of every task of every job (entries are dropped once stale).
        self._short_of_space: dict[tuple[str, int], None] = {}
        self.lost: set[str] = set()  # hosts lost (NodeLost) and not back since
        self._seq = 0
        self._eid = 0
        self._out: list[Instruction] = []
        self._handlers: dict[type, Callable[[Any], None]] = {
            JobSubmitted: self._on_submitted,
            JobRestored: self._on_restored,
            InputsResolved: self._on_inputs_resolved,
            InputsFailed: self._on_inputs_failed,
            AttemptDone: self._on_done,
            AttemptExited: self._on_exited,
            AttemptFailed: self._on_failed,
            RetryDue: self._on_retry_due,
            InputFailed: self._on_input_failed,
            KillRequested: self._on_kill,
            NodesConfigured: self._on_nodes,
            NodeLost: self._on_node_lost,
            NodeConnected: self._on_node_connected,
            SettingsChanged: self._on_settings,
            Tick: self._on_tick,
            ResultsSaved: self._on_results_saved,
            NodeFull: self._on_node_full,
            NodeSpaceBack: self._on_space_back,
        }

    # -- entry point -----------------------------------------------------------------------
    def handle(self, event: Event) -> list[Instruction]:
        """Apply one event; return the instructions for the runtime, in order."""
        self._eid += 1
        self._out = []
        self._handlers[type(event)](event)
        self._schedule(event.now)
        out, self._out = self._out, []
        return out

    def _emit(self, instruction: Instruction) -> None:
        self._out.append(instruction)

    def _event(self, job: str, text: str) -> None:
        self._emit(AppendEvent(job, text))

    # -- task state moves ------------------------------------------------------------------
    def _move(self, job: Job, task: Task, finish: TaskState) -> None:
        start = task.state if task.history else "new"
        if (start, finish) not in _TRANSITIONS:
            raise InvalidTransition(job.name, task.taskid, start, finish, task.history)
        stage = job.stage(task.stage)
        if start == "waiting":
            job.waiting.pop(task.taskid, None)
        elif start == "running":
            job.running -= 1
            stage.running -= 1
            if task.slot_freed:  # its node's slot was given back at its worker's exit
                task.slot_freed = False
            else:
                self._free_slot(task)
        elif start == "done":  # its outputs were lost with a node: it runs again
            stage.done -= 1
            stage.done_order.remove(task.taskid)
            if stage.finished:
                stage.finished, stage.reopened = False, True
                job.stage_results.pop(stage.name, None)
        if finish == "waiting":
            job.waiting[task.taskid] = None
        elif finish == "running":
            job.running += 1
            stage.running += 1
            self.nodes[task.host or ""].running += 1
        elif finish == "done":
            stage.done += 1
        task.state = finish
        task.history.append((self._eid, start, finish))

    def _free_slot(self, task: Task) -> None:
        node = self.nodes.get(task.host or "")
        if node is not None:
            node.running -= 1
            self._drop_retired(node)

    def _drop_retired(self, node: scheduler.NodeState) -> None:
        if node.max_workers == 0 and not node.connected and node.running == 0:
            self.nodes.pop(node.host, None)

    # -- jobs -----------------------------------------------------------------------------
    def _on_submitted(self, ev: JobSubmitted) -> None:
        spec: JobSpec = ev.spec
        self._seq += 1
        job = Job(name=ev.job, spec=spec, seq=self._seq, submitted=ev.now)
        job.stages = [Stage(s, i) for i, s in enumerate(spec.pipeline)]
        self.jobs[ev.job] = job
        self._event(job.name, "New job initialized!")
        self._event(job.name, 'Created job "%s"' % job.name)
        dirs = tuple(i.url for i in spec.inputs if not isinstance(i, DataInput))
        if dirs:
            self._emit(ResolveInputs(job.name, dirs))  # 6.4: indexes are read at job start
        else:
            self._start_job(job, {}, ev.now)

    def _on_restored(self, ev: JobRestored) -> None:
        """A job that was running when the master stopped: built again from its spec,
        the same way as at submission (same task ids for the same inputs and nodes),
        then its finished tasks are marked done in the order they finished."""
        self._seq += 1
        job = Job(name=ev.job, spec=ev.spec, seq=self._seq, submitted=ev.submitted)
        job.stages = [Stage(s, i) for i, s in enumerate(ev.spec.pipeline)]
        job.restoring = list(ev.done)
        self.jobs[ev.job] = job
        dirs = tuple(i.url for i in ev.spec.inputs if not isinstance(i, DataInput))
        if dirs:
            self._emit(ResolveInputs(job.name, dirs))
        else:
            self._start_job(job, {}, ev.now)

    def _replay(self, job: Job, now: float) -> None:
        """Mark done the restored tasks that match a task of the rebuilt job (in the
        order they finished, so later stages are fed as they were); the rest re-run."""
        restored = job.restoring or []
        job.restoring = None
        kept = 0
        for rec in restored:
            if job.status != "active":
                break
            task = job.tasks.get(rec.taskid)
            if (
                task is None
                or task.state != "waiting"
                or not task.inputs_done
                or task_signature(task) != rec.signature
            ):
                continue
            task.attempt, task.host = rec.attempt, rec.host
            kept += 1
            self._complete(job, task, rec.outputs, now)
        self._event(
            job.name,
            "Job restored after a master restart: %d finished task(s) kept, the others run again"
            % kept,
        )

    def _on_inputs_resolved(self, ev: InputsResolved) -> None:
        job = self.jobs.get(ev.job)
        if job is not None and job.status == "active" and job.items is None:
            self._start_job(job, ev.labels, ev.now)

    def _on_inputs_failed(self, ev: InputsFailed) -> None:
        job = self.jobs.get(ev.job)
        if job is not None and job.status == "active":
            self._event(job.name, "ERROR: %s" % ev.message)
            self._kill_job(job)

    def _start_job(self, job: Job, labels: dict[str, tuple[tuple[int, int], ...]], now: float):
        items: list[Item] = []
        for inp in job.spec.inputs:
            if isinstance(inp, DataInput):
                items.append(DataItem(inp.label, inp.size, inp.urls))
            else:
                items.append(DirItem(inp.url, tuple(labels.get(inp.url, ()))))
        job.items = items
        self._advance(job, now)
        if job.restoring is not None:
            self._replay(job, now)

    def _kill_job(self, job: Job) -> None:
        """The job ends ``dead``: its unfinished tasks are killed (10.2)."""
        for task in job.tasks.values():
            if task.state == "running":
                self._emit(KillTask(job.name, task.taskid, task.attempt))
                node = self.nodes.get(task.host or "")
                if node is not None:
                    node.error += 1  # 8.8: a killed task counts as a fatal end
            if task.state in ("waiting", "sleeping", "running"):
                self._move(job, task, "killed")
        job.status = "dead"
        self._emit(SaveJob(job.name))
        self._emit(JobFinished(job.name, "dead"))

    def _on_kill(self, ev: KillRequested) -> None:
        job = self.jobs.get(ev.job)
        if job is None:
            return
        if job.status == "active":
            self._event(job.name, "WARN: Job killed")
            self._kill_job(job)
        if ev.forget:
            del self.jobs[job.name]
            self._emit(JobForgotten(job.name))

    # -- stages ---------------------------------------------------------------------------
    def _stage_items(self, job: Job, index: int) -> list[Item]:
        if index == 0:
            return list(job.items or [])
        prev = job.stages[index - 1]
        order = sorted(prev.done_order) if prev.finished else prev.done_order
        return [it for t in order for it in output_items(job.tasks[t].outputs)]

    def _open(self, job: Job, stage: Stage, now: float) -> None:
        stage.opened, stage.opened_at = True, now
        prev_done = stage.index == 0 or job.stages[stage.index - 1].finished
        items = self._stage_items(job, stage.index)
        if prev_done:
            for group, inputs in group_items(stage.spec.grouping, items, self.cluster()):
                self._new_task(job, stage, group, inputs, True)
        else:
            for item in items:
                self._feed(job, stage, item)
        self._event(job.name, "Stage %s scheduled with %d tasks" % (stage.name, len(stage.taskids)))

    def cluster(self) -> frozenset[str]:
        """The configured node names: inputs on any other host form one outside node."""
        return frozenset(self.nodes)

    def _feed(self, job: Job, stage: Stage, item: Item) -> None:
        """A new input for a concurrent stage (7.4): to its group's task, or a new task."""
        for key, group, inp in assign(stage.spec.grouping, item, self.cluster()):
            taskid = stage.groups.get(key) if key is not None else None
            task = job.tasks.get(taskid) if taskid is not None else None
            if task is not None and task.state in ("waiting", "sleeping", "running"):
                task.add_input(inp)
                self._emit(InputsChanged(job.name, task.taskid))
                continue
            # split tasks get exactly one input, so their input set is complete at once
            task = self._new_task(job, stage, group, [inp], key is None)
            if key is not None:
                stage.groups[key] = task.taskid

    def _new_task(
        self, job: Job, stage: Stage, group: tuple[int, str], inputs: list[TaskInput], done: bool
    ) -> Task:
        node = self.nodes.get(group[1])
        task = Task(
            job=job.name,
            taskid=job.next_taskid,
            stage=stage.name,
            grouping=stage.spec.grouping,
            group=group,
            inputs=[],
            inputs_done=done,
            pinned=group[1] if node is not None and node.live else None,  # 7.3
        )
        for inp in inputs:
            task.add_input(inp)
        job.next_taskid += 1
        job.tasks[task.taskid] = task
        stage.taskids.append(task.taskid)
        self._move(job, task, "waiting")
        return task

    def _advance(self, job: Job, now: float) -> None:
        """Open and finish stages in order until one is still running (7.1)."""
        for stage in job.stages:
            if not stage.opened:
                self._open(job, stage, now)
            if stage.finished:
                continue
            if stage.index + 1 < len(job.stages):
                nxt = job.stages[stage.index + 1]
                if nxt.spec.concurrent and not nxt.opened:
                    self._open(job, nxt, now)  # 7.4: fed as this stage's tasks finish
            prev_done = stage.index == 0 or job.stages[stage.index - 1].finished
            if not prev_done or stage.done < len(stage.taskids):
                return
            self._finish_stage(job, stage, now)
        self._job_ready(job, now)

    def _finish_stage(self, job: Job, stage: Stage, now: float) -> None:
        stage.finished, stage.reopened = True, False
        tasks = [job.tasks[t] for t in stage.taskids]
        job.stage_results[stage.name] = result_entries(tasks)
        self._event(
            job.name,
            "Stage %s finished in %s" % (stage.name, format_duration(now - stage.opened_at)),
        )
        self._emit(SaveJob(job.name))
        if stage.index + 1 < len(job.stages):
            nxt = job.stages[stage.index + 1]
            if nxt.opened:  # a concurrent stage: its input sets are now complete (7.4)
                for taskid in nxt.taskids:
                    task = job.tasks[taskid]
                    if not task.inputs_done:
                        task.inputs_done = True
                        self._emit(InputsChanged(job.name, taskid))

    def _job_ready(self, job: Job, now: float) -> None:
        if job.stages:
            last = job.stages[-1]
            job.results = job.stage_results[last.name]
        else:  # 7.1: an empty pipeline's results are the job inputs
            job.results = [
                list(i.urls) if isinstance(i, DataItem) else [i.url] for i in job.items or []
            ]
        if saves_to_ddfs(job.spec) and job.stages:
            # ddfs.md 7.2: the job is ready once its results tag is written.
            if not job.saving:
                job.saving = True
                self._event(job.name, "Saving the results in DDFS tag %s" % results_tag(job.name))
                self._emit(SaveResults(job.name, tuple(tuple(r) for r in job.results)))
            return
        if job.spec.save_results:  # save_info "hdfs,...": not supported (docs/ddfs.md)
            self._event(
                job.name,
                "WARN: Results are not saved: save_info %r is not supported, "
                "they stay on the nodes" % job.spec.save_info,
            )
        self._ready(job, now)

    def _ready(self, job: Job, now: float) -> None:
        job.status = "ready"
        self._event(job.name, "READY: Job done in %s" % format_duration(now - job.submitted))
        self._emit(SaveJob(job.name))
        self._emit(JobFinished(job.name, "ready"))

    def _on_results_saved(self, ev: ResultsSaved) -> None:
        job = self.jobs.get(ev.job)
        if job is None or job.status != "active" or not job.saving:
            return  # killed while its results were being saved
        job.saving = False
        if ev.error is not None:
            self._event(job.name, "ERROR: Saving the results in DDFS failed: %s" % ev.error)
            self._kill_job(job)
            return
        job.results = ["tag://%s" % results_tag(job.name)]  # a bare string (2.4)
        self._ready(job, ev.now)

    # -- task results ---------------------------------------------------------------------
    def _attempt(self, job_name: str, taskid: int, attempt: int) -> tuple[Job, Task] | None:
        job = self.jobs.get(job_name)
        if job is None or job.status != "active":
            return None
        task = job.tasks.get(taskid)
        if task is None or task.state != "running" or task.attempt != attempt:
            return None  # a late report of a killed or superseded attempt
        return job, task

    def _on_done(self, ev: AttemptDone) -> None:
        found = self._attempt(ev.job, ev.taskid, ev.attempt)
        if found is None:
            return
        job, task = found
        host = task.host or ""
        if host in self.nodes:
            self.nodes[host].job_ok += 1
        # Saved before anything reports it done: what jobinfo shows done survives a restart.
        self._emit(SaveTask(job.name, task.taskid))
        self._event(job.name, "SYS: [%s] Received results from %s" % (task.label, host))
        self._complete(job, task, ev.outputs, ev.now)

    def _complete(self, job: Job, task: Task, outputs: tuple[TaskOutput, ...], now: float) -> None:
        """``task`` is done with ``outputs``: feed a concurrent next stage, advance."""
        task.outputs = tuple(outputs)
        self._move(job, task, "done")
        stage = job.stage(task.stage)
        stage.done_order.append(task.taskid)
        if task.lost_outputs is not None:
            # It ran again after a node loss: its consumers already have its (lost)
            # outputs as inputs; they get the new URLs instead of new inputs.
            if not self._give_new_outputs(job, task):
                return
        elif stage.index + 1 < len(job.stages):
            nxt = job.stages[stage.index + 1]
            if nxt.opened and not stage.finished:
                for item in output_items(task.outputs):
                    self._feed(job, nxt, item)
        self._advance(job, now)

    def _on_exited(self, ev: AttemptExited) -> None:
        """The attempt's worker sent DONE and was killed: its node's slot goes to the
        next task now (``max_workers`` counts running tasks, as in 0.5), while the node
        syncs the index file; the task stays running (for its job and stage) until
        ``AttemptDone`` or ``AttemptFailed``."""
        found = self._attempt(ev.job, ev.taskid, ev.attempt)
        if found is None or found[1].slot_freed:
            return
        task = found[1]
        task.slot_freed = True
        self._free_slot(task)

    def _on_failed(self, ev: AttemptFailed) -> None:
        found = self._attempt(ev.job, ev.taskid, ev.attempt)
        if found is None:
            return
        self._fail(found[0], found[1], ev.kind, ev.message)

    def _fail(self, job: Job, task: Task, kind: str, message: str) -> None:
        host = task.host or ""
        node = self.nodes.get(host)
        if self.lost and any(lostnodes.input_lost(i, self.lost) for i in task.inputs):
            # It could not read an input lost with a node (INPUT_ERR of every replica):
            # not its fault when the producer can run again; it then waits (stopped
            # and held by _recover_outputs) for the new outputs.
            self._recover_outputs(job, "")
            if task.state != "running":
                return
            producers = lostnodes.rerunning_producers(job, task)
            if producers:  # they already run again: wait for them
                task.held_by.update(p.taskid for p in producers)
                self._requeue(
                    job,
                    task,
                    "WARNING: [%s] %s; it runs again once %s has run again"
                    % (task.label, message, ", ".join(p.label for p in producers)),
                    node_failed=False,
                )
                return
        job.stage(task.stage).failed += 1
        if kind == "fatal":
            if node is not None:
                node.error += 1
            self._event(job.name, "FATAL: [%s] %s" % (task.label, message))
            self._move(job, task, "killed")
            self._kill_job(job)
            return
        if node is not None:
            node.data_error += 1
        task.failures += 1
        n = task.failures
        self._event(job.name, "WARNING: [%s] %s" % (task.label, message))
        if n > self.max_failure_rate:
            self._event(
                job.name,
                "ERROR: [%s] Task %s failed %d times. At most %d failures are allowed."
                % (task.label, task.label, n, self.max_failure_rate),
            )
            self._move(job, task, "killed")
            self._kill_job(job)
            return
        task.avoid.add(host)
        task.pinned = None  # 7.3: re-runs are never pinned
        if self.retry_delay is not None:
            delay = self.retry_delay
        else:
            delay = retrypolicy.retry_delay(n, self.rng)  # 10.3, changed: docs/decisions.md
        self._event(
            job.name,
            'Task %s failed on "%s", %dth failures so far. Sleeping %s seconds before retrying.'
            % (task.label, host, n, _seconds(delay)),
        )
        self._move(job, task, "sleeping")
        self._emit(ScheduleRetry(job.name, task.taskid, delay))

    def _on_retry_due(self, ev: RetryDue) -> None:
        job = self.jobs.get(ev.job)
        task = job.tasks.get(ev.taskid) if job is not None else None
        if job is not None and task is not None and task.state == "sleeping":
            self._move(job, task, "waiting")
            # A retry goes first: it takes the next free slot instead of waiting for every
            # task queued since it started (a killed worker's task restarts at once).
            to_front = getattr(job.waiting, "move_to_end", None)  # an OrderedDict
            if to_front is not None:
                to_front(ev.taskid, last=False)
            else:
                job.waiting = {ev.taskid: None, **job.waiting}

    def _on_input_failed(self, ev: InputFailed) -> None:
        job = self.jobs.get(ev.job)
        task = job.tasks.get(ev.taskid) if job is not None else None
        if task is None or not 0 <= ev.input_id < len(task.inputs):
            return
        inp = task.inputs[ev.input_id]
        for rid in ev.replica_ids:
            if 0 <= rid < len(inp.urls):
                inp.failed[rid] = ev.now

    # -- nodes and settings ---------------------------------------------------------------
    def _on_nodes(self, ev: NodesConfigured) -> None:
        configured = dict(ev.nodes)
        for host, node in list(self.nodes.items()):
            if host not in configured:
                # 13.16: a removed node with running tasks stays visible, disconnected
                node.max_workers, node.connected = 0, False
                self._drop_retired(node)
        for host, max_workers in ev.nodes:
            node = self.nodes.setdefault(host, scheduler.NodeState(host, max_workers))
            node.max_workers = max_workers
            node.connected = host in ev.connected
            node.blacklisted = host in ev.blacklist
            if node.connected:
                self.lost.discard(host)

    def _on_node_lost(self, ev: NodeLost) -> None:
        """10.4, changed (docs/decisions.md, "Node loss"): the attempts running on the
        node run again elsewhere at once (a node failure, not counted against the task),
        and the finished tasks whose outputs were on it run again when a stage still
        needs them; their consumers wait for the new outputs."""
        node = self.nodes.get(ev.host)
        if node is not None:
            node.connected = False
        self.lost.add(ev.host)
        for job in list(self.jobs.values()):
            if job.status != "active":
                continue
            for task in list(job.tasks.values()):
                if task.state == "running" and task.host == ev.host:
                    self._emit(KillTask(job.name, task.taskid, task.attempt))
                    self._event(
                        job.name,
                        "WARNING: [%s] Connection lost to the node (network busy?)" % task.label,
                    )
                    self._requeue(
                        job,
                        task,
                        'Task %s failed on "%s": the node was lost; it runs again on another '
                        "node (a node failure, not counted against the task)"
                        % (task.label, ev.host),
                    )
            self._recover_outputs(job, ev.host)

    def _requeue(self, job: Job, task: Task, text: str, node_failed: bool = True) -> None:
        """A running attempt ends for no fault of the task: it waits for a slot again.
        ``node_failed``: its node was lost (counted in the node's ``data_error``, 3.3)."""
        job.stage(task.stage).failed += 1
        node = self.nodes.get(task.host or "")
        if node is not None and node_failed:
            node.data_error += 1
        task.pinned = None  # 7.3: re-runs are never pinned
        self._event(job.name, text)
        self._move(job, task, "waiting")

    def _recover_outputs(self, job: Job, host: str) -> None:
        """Re-run the finished tasks of ``job`` whose outputs are on lost nodes and still
        needed (``lostnodes.tasks_to_rerun``); hold (stop, if running) their consumers."""
        rerun = lostnodes.tasks_to_rerun(job, self.lost)
        if not rerun:
            return
        where = "node %s" % host if host else "node(s) %s" % ", ".join(sorted(self.lost))
        reopened: dict[str, int] = {}
        for task in rerun:
            stage = job.stage(task.stage)
            if stage.finished:
                reopened[stage.name] = 0
            if stage.name in reopened:
                reopened[stage.name] += 1
            needed_by = (
                job.stages[stage.index + 1].name
                if stage.index + 1 < len(job.stages)
                else "%s (the job's results)" % stage.name
            )
            self._event(
                job.name,
                "WARN: [%s] its outputs were lost with %s and stage %s still needs them: "
                "it runs again on another node" % (task.label, where, needed_by),
            )
            self._emit(ForgetTask(job.name, task.taskid))
            task.lost_outputs = task.outputs
            task.outputs = ()
            task.pinned = None
            self._move(job, task, "waiting")
        for name, count in reopened.items():
            self._event(job.name, "Stage %s reopened: %d task(s) run again" % (name, count))
        for task in rerun:
            for consumer in lostnodes.consumers(job, task, task.lost_outputs or ()):
                if consumer.state == "done":
                    continue
                consumer.held_by.add(task.taskid)
                if consumer.state == "running":
                    self._emit(KillTask(job.name, consumer.taskid, consumer.attempt))
                    self._requeue(
                        job,
                        consumer,
                        "WARNING: [%s] stopped: its input from %s was lost with %s; it runs "
                        "again once %s has run again"
                        % (consumer.label, task.label, where, task.label),
                        node_failed=False,
                    )
                else:
                    self._event(
                        job.name,
                        "[%s] waits: its input from %s was lost with %s; it runs once %s has "
                        "run again" % (consumer.label, task.label, where, task.label),
                    )

    def _give_new_outputs(self, job: Job, task: Task) -> bool:
        """``task`` finished again after its outputs were lost: its consumers' inputs
        become the new URLs and they may start.  ``False`` if the job ended instead (the
        new outputs cannot stand in for the old ones)."""
        old, task.lost_outputs = task.lost_outputs or (), None
        holders = [t for t in job.tasks.values() if task.taskid in t.held_by]
        mapping = lostnodes.url_map(old, task.outputs)
        if isinstance(mapping, str):
            message = (
                "Task %s ran again after its outputs were lost with a node, and %s: its "
                "consumers cannot give the exact answer" % (task.label, mapping)
            )
            self._event(job.name, "ERROR: %s" % message)
            self._emit(JobFailure(job.name, "node", "NodeLost", message))
            self._kill_job(job)
            return False
        for consumer in lostnodes.consumers(job, task, old):
            for inp in consumer.inputs:
                if inp.urls in mapping:
                    inp.urls = mapping[inp.urls]
                    inp.failed.clear()
            self._emit(InputsChanged(job.name, consumer.taskid))
        for consumer in holders:
            consumer.held_by.discard(task.taskid)
            if not consumer.held_by and consumer.state in ("waiting", "sleeping"):
                self._event(
                    job.name,
                    "[%s] its inputs are back (%s ran again on %s): it may start"
                    % (consumer.label, task.label, task.host),
                )
        return True

    def _on_node_connected(self, ev: NodeConnected) -> None:
        self.lost.discard(ev.host)
        node = self.nodes.get(ev.host)
        if node is not None and node.max_workers > 0:
            node.connected = True

    # -- full disks (issue 8, section 4) -----------------------------------------------
    def _on_node_full(self, ev: NodeFull) -> None:
        node = self.nodes.get(ev.host)
        task = self.task(ev.job, ev.taskid)
        if node is None or task is None:
            return
        task.no_space[ev.host] = ev.needed
        task.no_space_since = ev.now
        self._short_of_space[(ev.job, ev.taskid)] = None
        self._update_full(node, ev.free, ev.now, disk=ev.disk)
        self._event(
            ev.job,
            "WARN: [%s] The disk of node %s is full (%s): the task does not start there "
            "again until %s are free" % (task.label, ev.host, ev.disk, format_bytes(ev.needed)),
        )

    def _update_full(self, node: scheduler.NodeState, free: int, now: float, disk: str = "") -> None:
        """``node.full`` from the needs of the tasks waiting for space on it."""
        needs = [
            t.no_space[node.host]
            for j in self.jobs.values()
            if j.status == "active"
            for t in j.tasks.values()
            if node.host in t.no_space
        ]
        if not needs:
            node.full = None
        elif node.full is None:
            node.full = scheduler.DiskFull(disk, free, min(needs), now)
        else:
            node.full.free, node.full.needed = free, min(needs)

    def _on_space_back(self, ev: NodeSpaceBack) -> None:
        node = self.nodes.get(ev.host)
        if node is None:
            return
        for job in self.jobs.values():
            for task in job.tasks.values():
                needed = task.no_space.get(ev.host)
                if needed is not None and needed <= ev.free:
                    del task.no_space[ev.host]
                    if job.status == "active":
                        self._event(
                            job.name,
                            "[%s] Node %s has space again (%s free): the task may start there"
                            % (task.label, ev.host, format_bytes(ev.free)),
                        )
        self._update_full(node, ev.free, ev.now)

    def _fail_when_no_space(self, now: float) -> None:
        """A task that every usable node has had no space for since ``full_grace``
        seconds ends its job ``dead``, saying which disks are full and what it needs."""
        usable = {n.host for n in self.nodes.values() if n.live and n.max_workers > 0}
        if not usable:
            return
        short: dict[str, list[Task]] = {}
        for key in list(self._short_of_space):
            job = self.jobs.get(key[0])
            task = job.tasks.get(key[1]) if job is not None else None
            if job is None or task is None or not task.no_space or job.status != "active":
                del self._short_of_space[key]
                continue
            short.setdefault(job.name, []).append(task)
        for name in [n for n in self.jobs if n in short]:  # jobs, then tasks, in order
            job = self.jobs[name]
            for task in sorted(short[name], key=lambda t: t.taskid):
                if (
                    job.status == "active"
                    and task.state in ("waiting", "sleeping")
                    and usable <= task.no_space.keys()
                    and now - task.no_space_since >= self.full_grace
                ):
                    self._no_space_left(job, task, sorted(usable))
                    break

    def _no_space_left(self, job: Job, task: Task, hosts: list[str]) -> None:
        parts = []
        for host in hosts:
            full = self.nodes[host].full
            disk = "%s of node %s" % (full.disk, host) if full else "of node %s" % host
            free = "%s free, " % format_bytes(full.free) if full else ""
            parts.append(
                "the disk %s is full (%sthe task needs at least %s)"
                % (disk, free, format_bytes(task.no_space[host]))
            )
        message = "No node has space left for task %s: %s" % (task.label, "; ".join(parts))
        self._event(job.name, "ERROR: %s" % message)
        self._emit(JobFailure(job.name, "disk", "DiskFull", message))
        self._kill_job(job)
        for node in self.nodes.values():
            if node.full is not None:
                self._update_full(node, node.full.free, 0.0)

    def _on_settings(self, ev: SettingsChanged) -> None:
        self.max_failure_rate = ev.max_failure_rate

    def _on_tick(self, ev: Tick) -> None:
        active = [j for j in self.jobs.values() if j.status == "active"]
        cores = scheduler.total_cores(self.nodes.values())
        for job in active:
            job.priority = scheduler.update_priority(
                job.priority, job.running, cores, len(active), self.alpha
            )
            job.boost = 0.0
        self._fail_when_no_space(ev.now)

    # -- scheduling (10.5) ----------------------------------------------------------------
    def _schedule(self, now: float) -> None:
        while True:
            eligible = scheduler.eligible_nodes(self.nodes.values())
            if not eligible:
                return
            views = [
                scheduler.JobView(j.name, j.seq, j.priority + j.boost)
                for j in self.jobs.values()
                if j.status == "active" and j.waiting and j.running < j.spec.max_cores
            ]
            for name in scheduler.order_jobs(self.policy, views):
                if self._start_one(self.jobs[name], eligible):
                    break
            else:
                return

    def _start_one(self, job: Job, eligible: list[scheduler.NodeState]) -> bool:
        live = {n.host for n in self.nodes.values() if n.live}
        blocked: set[str] = set()
        # No copy of the queue (O(waiting) per start made a big job quadratic): the loop
        # returns as soon as _start has taken the task out of it.
        for taskid in job.waiting:
            task = job.tasks[taskid]
            if task.stage in blocked or task.held_by:
                continue  # held: a producer of its inputs runs again (node loss)
            stage = job.stage(task.stage)
            if not job.admissible(stage):
                blocked.add(task.stage)
                continue
            if task.pinned is not None and (task.pinned not in live or task.no_space):
                task.pinned = None  # 10.4: its node left; run it anywhere
            if live and live <= task.avoid:
                task.avoid.clear()  # 10.3: every live host failed it
            host = scheduler.pick_node(
                pinned=task.pinned,
                input_hosts=task.input_hosts(),
                avoid=task.avoid | task.no_space.keys(),  # no space: not until it is back
                eligible=eligible,
            )
            if host is None:
                continue
            self._start(job, task, host)
            return True
        return False

    def _start(self, job: Job, task: Task, host: str) -> None:
        task.attempt += 1
        task.host = host
        self._move(job, task, "running")
        cores = scheduler.total_cores(self.nodes.values())
        job.boost += 1.0 / cores if cores else 0.0
        self._event(job.name, "%s assigned to %s" % (task.label, host))
        self._emit(
            StartTask(
                job.name,
                task.taskid,
                task.attempt,
                host,
                task.stage,
                task.grouping,
                task.group,
                saves_to_ddfs(job.spec) and job.stage(task.stage).index == len(job.stages) - 1,
            )
        )

    # -- queries --------------------------------------------------------------------------
    def task(self, job: str, taskid: int) -> Task | None:
        found = self.jobs.get(job)
        return found.tasks.get(taskid) if found is not None else None

    def running_on(self, host: str) -> list[str]:
        """One job name per task running on ``host`` (nodeinfo ``tasks``, 3.3)."""
        return [
            t.job
            for j in self.jobs.values()
            for t in j.tasks.values()
            if t.state == "running" and t.host == host
        ]

    def validate(self) -> None:
        """Check the invariants; raises AssertionError naming the broken one."""
        node_running: dict[str, int] = {}
        for job in self.jobs.values():
            running = [t for t in job.tasks.values() if t.state == "running"]
            assert job.running == len(running), "job %s running count" % job.name
            if job.status != "active":
                assert not running and not job.waiting, "finished job %s has tasks" % job.name
            assert job.running <= job.spec.max_cores, "job %s over max_cores" % job.name
            waiting = {t.taskid for t in job.tasks.values() if t.state == "waiting"}
            assert waiting == set(job.waiting), "job %s waiting queue" % job.name
            for stage in job.stages:
                tasks = [job.tasks[t] for t in stage.taskids]
                assert stage.running == sum(t.state == "running" for t in tasks)
                assert stage.done == sum(t.state == "done" for t in tasks)
                assert not stage.finished or stage.done == len(tasks), stage.name
            assert sum(len(s.taskids) for s in job.stages) == len(job.tasks)
            for task in running:
                if not task.slot_freed:
                    node_running[task.host or ""] = node_running.get(task.host or "", 0) + 1
            assert not any(t.slot_freed and t.state != "running" for t in job.tasks.values())
        for host, node in self.nodes.items():
            assert node.running == node_running.get(host, 0), "node %s running count" % host
        assert set(node_running) <= set(self.nodes), "tasks on unknown nodes"
