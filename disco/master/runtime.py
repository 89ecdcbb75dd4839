"""The master's async shell around the pure ``Coordinator`` (master-api.md 2, 5, 10).

Owns: feeding events to the coordinator (one feeder on the loop, no locks), carrying out
its instructions (task attempts through the backend, event logs, store saves, retry
timers, v1 ``dir://`` index downloads, deferred INPUT replies), job submission and
naming (5), kill/clean/purge (10.2), ``get_results`` long polls, the config table and
runtime settings, node connectivity polling (and the node set of a backend that has
one, ``Backend.node_set``), the task channels of running attempts by token
(``disco.backends.channel``), fair-share ticks and the age GC of job data (10.6).  HTTP
handlers call the public methods here; nothing else touches the coordinator's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import logging
import os
import shutil
import sqlite3
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import aiohttp

from disco import auth
from disco.backends.base import (
    Backend,
    InputEntry,
    Replica,
    TaskChannel,
    TaskDone,
    TaskFailed,
    TaskSpec,
)
from disco.backends.channel import ChannelRegistry
from disco.failure import Failure
from disco.master import jobpack
from disco.master.attempts import AttemptLog
from disco.master.config import MasterConfig
from disco.master.coordinator import Coordinator
from disco.master.events import EventLog, job_dir, timestamp
from disco.master.failures import NO_FAILURES, FailureLog
from disco.master.grouping import url_host
from disco.master.jobdata import job_dirs, parse_index_labels, write_pack
from disco.master.recovery import OutputCheck, RecoveryError, done_task, restore_event
from disco.master.stages import input_reply, retry_replicas
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
    JobFailure,
    JobFinished,
    JobForgotten,
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
    Tick,
)
from disco.master.store import (
    RESTART_EVENT,
    ClusterConfig,
    ConfigError,
    DoneTask,
    JobRecord,
    Store,
    expand_table,
)
from disco.node.diskspace import MARGIN, disk_of, is_disk_full, is_disk_full_error
from disco.safenames import JOB_NAME_MAX, UnsafeName, check_host_name, valid_name

if TYPE_CHECKING:
    from disco.master.jobtags import JobTags

logger = logging.getLogger(__name__)

PURGED_RETENTION = 24 * 3600.0  # 11.5: purged-list retention


@functools.lru_cache(maxsize=64)
def _jobpack_url(master_url: str, job: str) -> str:
    """Where a task's node fetches the job pack (the same for every task of a job)."""
    return "%s/disco/ctrl/parameters?name=%s" % (
        master_url.rstrip("/"),
        urllib.parse.quote(job, safe="@:"),
    )


class AttemptChannel:
    """``TaskChannel`` of one task attempt (backends/base.py, master-api.md 8.5)."""

    def __init__(
        self, runtime: Runtime, job: str, taskid: int, host: str, label: str, attempt: int = 0
    ) -> None:
        self._rt, self.job, self.taskid, self.host, self.label = runtime, job, taskid, host, label
        self.attempt = attempt

    async def get_inputs(
        self, mode: Literal["all", "include", "exclude"], ids: list[int]
    ) -> tuple[Literal["done", "more"], list[InputEntry]]:
        while True:
            reply = self.inputs_now(mode, ids)
            if reply is not None:
                return reply
            # 8.5: deferred reply until new inputs arrive or the input set is complete
            await self._rt.input_signal(self.job, self.taskid).wait()

    def inputs_now(
        self, mode: Literal["all", "include", "exclude"], ids: list[int]
    ) -> tuple[Literal["done", "more"], list[InputEntry]] | None:
        """The INPUT reply if it can be given now, ``None`` if it must wait (8.5); the
        runner asks this first, so that an answer at hand costs no coroutine and task."""
        task = self._rt.coordinator.task(self.job, self.taskid)
        if task is None:
            return "done", []
        flag, entries = input_reply(task, mode, ids)
        if entries or flag == "done":
            return flag, entries
        return None

    async def input_failed(self, input_id: int, replica_ids: list[int]) -> list[Replica] | None:
        now = self._rt.clock()
        task = self._rt.coordinator.task(self.job, self.taskid)
        if task is not None and 0 <= input_id < len(task.inputs):
            # A replica on a node that has just gone: the coordinator learns it now, not
            # at the next poll, and this attempt is stopped to wait for the producer.
            urls = task.inputs[input_id].urls
            hosts = {url_host(urls[r]) for r in replica_ids if 0 <= r < len(urls)}
            self._rt.check_nodes(hosts, "disconnected; a task could not read its data")
        self._rt.feed(InputFailed(self.job, self.taskid, input_id, tuple(replica_ids), now))
        task = self._rt.coordinator.task(self.job, self.taskid)
        return retry_replicas(task, input_id, replica_ids) if task is not None else None

    async def event(self, message: str) -> None:
        self._rt.append_event(self.job, message, self.host)

    def event_now(self, message: str) -> None:
        """``event`` without a coroutine: the runner logs a worker's MSG with it from
        the loop's read callback (``disco.node.runner``)."""
        self._rt.append_event(self.job, message, self.host)

    def exited(self) -> None:
        """The worker sent DONE and has been killed (the runner calls this before it
        syncs the index file): the node's slot goes to the next task (``AttemptExited``);
        the attempt's result follows."""
        if not self._rt._closing:
            self._rt.feed(AttemptExited(self.job, self.taskid, self.attempt, self._rt.clock()))


class Runtime:
    """Owns the coordinator and everything with I/O around it."""

    def __init__(
        self,
        config: MasterConfig,
        store: Store,
        backend: Backend,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.store = store
        self.backend = backend
        self.clock = clock
        self.max_failure_rate = int(store.get_setting("max_failure_rate", config.max_failure_rate))
        self.accept_new_jobs = int(store.get_setting("accept_new_jobs", 1))
        self.coordinator = Coordinator(
            policy=config.scheduler,
            alpha=config.alpha,
            retry_delay=config.retry_delay,
            max_failure_rate=self.max_failure_rate,
        )
        self.records: dict[str, JobRecord] = {}
        self.logs: dict[str, EventLog] = {}
        self.failures: dict[str, FailureLog] = {}
        self.attempts = AttemptLog()  # every task attempt, for the UI's timeline and metrics
        self.started_at = clock()
        self.last_contact: dict[str, float] = {}  # host -> last time it was seen connected
        self.cluster = ClusterConfig([])
        self.nodes: list[tuple[str, int]] = []
        self.purged: dict[str, float] = {}
        # The master's disk when it is full (nodeinfo ``master_disk_full``), else None.
        self.master_disk: dict[str, Any] | None = None
        # The master's DDFS duties (results tags, OOB tags); set by the composition root.
        self.job_tags: JobTags | None = None
        self._oob_to_delete: set[str] = set()  # purged jobs whose OOB tag is still there
        self._attempts: dict[tuple[str, int, int], asyncio.Task[None]] = {}
        self._signals: dict[tuple[str, int], asyncio.Event] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._finished = asyncio.Event()
        self._queue: deque[Event] = deque()
        self._feeding = False
        self._last_us = 0
        self._seq = 0
        self._connected: dict[str, bool] = {}
        self._closing = False
        self._done_tasks: list[DoneTask] = []  # saved at the end of each feed (recovery)
        self.channels = ChannelRegistry()  # task channels of running attempts, by token
        self._node_set: dict[str, int] | None = None  # the backend's, when it has one
        self._config_lock = asyncio.Lock()

    # -- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        for rec in self.store.load_jobs():
            self._seq = max(self._seq, rec.seq)
            if not os.path.isdir(job_dir(self.config.master_root, rec.name)):
                self._drop_stale_record(rec.name)
                continue
            self.records[rec.name] = rec
        for name, data in self.store.load_failures().items():
            if name in self.records:
                self.failures[name] = FailureLog.from_json(data)
        self.check_master_disk()
        config = self.store.load_config()
        await self.apply_config(config, save=False, first=True)
        await self._restore_running()  # after the nodes: grouping depends on them
        self._spawn(self._tick_loop())
        self._spawn(self._gc_loop())

    async def _restore_running(self) -> None:
        """Jobs a previous run left ``active`` carry on (``disco.master.recovery``); one
        that cannot be rebuilt becomes ``dead`` with an event saying why (13.15)."""
        active = [r for r in self.records.values() if r.status == "active"]
        if not active:
            return
        async with aiohttp.ClientSession() as session:
            check = OutputCheck(self.config.disco_data, self.config.port, session)
            for rec in sorted(active, key=lambda r: r.seq):
                if self.store.read_only is not None:
                    # Not restored now, and not saved dead: a start with space restores it.
                    self._not_restored(rec, "the master's disk is full", save=False)
                    continue
                try:
                    event = await restore_event(rec, self.store, check, self.clock())
                except RecoveryError as exc:
                    self._not_restored(rec, str(exc))
                    continue
                logger.info("job %s restored: %d finished tasks", rec.name, len(event.done))
                self.logs[rec.name] = EventLog(self.config.master_root, rec.name)
                self.feed(event)
                if rec.name not in self.coordinator.jobs:  # the coordinator refused it
                    rec.status = "dead"
                    self.store.mark_dead(rec.name)

    def _not_restored(self, rec: JobRecord, why: str, save: bool = True) -> None:
        logger.warning("job %s cannot be restored: %s", rec.name, why)
        rec.status = "dead"
        try:
            if save:
                self.store.mark_dead(rec.name)
            log = EventLog(self.config.master_root, rec.name)
            log.append("master", "%s: %s" % (RESTART_EVENT, why), self.clock())
            log.close()
        except (OSError, sqlite3.Error) as exc:
            logger.error("job %s: its end could not be recorded (%s)", rec.name, exc)

    def _drop_stale_record(self, name: str) -> None:
        """A record whose job directory is gone: a clean or purge that could not delete
        the record (a full disk, a crash in between).  Finish it."""
        logger.warning("job %s: its data is gone (purged); forgetting its record", name)
        if self.store.read_only:
            return
        try:
            self.store.delete_job(name)
        except sqlite3.Error as exc:
            logger.error("job %s: its record could not be deleted (%s)", name, exc)

    async def close(self) -> None:
        self._closing = True
        for timer in self._timers:
            timer.cancel()
        for task in list(self._background) + list(self._attempts.values()):
            task.cancel()
        pending = list(self._background) + list(self._attempts.values())
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for log in self.logs.values():
            log.close()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # -- the feeder -----------------------------------------------------------------------
    def feed(self, event: Event) -> None:
        """Hand an event to the coordinator and carry out what it says (never re-entrant)."""
        self._queue.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._queue:
                ev = self._queue.popleft()
                try:
                    instructions = self.coordinator.handle(ev)
                except Exception as exc:
                    logger.exception("coordinator failed on %r", ev)
                    self._internal_error(ev, exc)
                    continue
                for ins in instructions:
                    try:
                        self._execute(ins)
                    except Exception:
                        logger.exception("instruction %r failed", ins)
            self._save_done_tasks()
        finally:
            self._feeding = False

    def _save_done_tasks(self) -> None:
        """One transaction for the tasks finished during this feed, before any HTTP
        request can see them done (a job that ended meanwhile needs none)."""
        rows = [t for t in self._done_tasks if self.status(t.job)[0] == "active"]
        self._done_tasks.clear()
        if rows:
            try:
                self.store.save_tasks(rows)
            except Exception:
                logger.exception("saving %d finished task(s) failed", len(rows))

    def _forget_task(self, job: str, taskid: int) -> None:
        """A finished task runs again after a node loss: its saved row goes (recovery
        must not bring its lost outputs back)."""
        self._done_tasks = [t for t in self._done_tasks if (t.job, t.taskid) != (job, taskid)]
        try:
            self.store.forget_task(job, taskid)
        except Exception:
            logger.exception("forgetting the saved task %s:%d failed", job, taskid)

    def _internal_error(self, ev: Event, exc: Exception) -> None:
        job = getattr(ev, "job", None)
        if job is None or job not in self.records:
            return
        self.append_event(job, "ERROR: Job killed due to an internal exception: %s" % exc)
        try:
            self._queue.append(KillRequested(job, self.clock()))
        except Exception:  # pragma: no cover - the queue append cannot fail
            pass

    def _execute(self, ins: Instruction) -> None:
        kind = type(ins)  # the three of every task first (final dataclasses: exact types)
        if kind is AppendEvent:
            self.append_event(ins.job, ins.text, ins.host)
        elif kind is StartTask:
            self._start_attempt(ins)
        elif kind is SaveTask:
            # a store that is not durable is never read again (its master's data goes
            # when it stops): no restart recovers from it, so its tasks are not saved
            task = self.coordinator.task(ins.job, ins.taskid) if self.store.durable else None
            if task is not None:
                self._done_tasks.append(done_task(task))
        elif isinstance(ins, KillTask):
            attempt = self._attempts.pop((ins.job, ins.taskid, ins.attempt), None)
            if attempt is not None:
                attempt.cancel()  # the backend kills the worker's process group
        elif isinstance(ins, InputsChanged):
            signal = self._signals.pop((ins.job, ins.taskid), None)
            if signal is not None:
                signal.set()
        elif isinstance(ins, ScheduleRetry):
            loop = asyncio.get_running_loop()
            handle: asyncio.TimerHandle | None = None

            def due(job: str = ins.job, taskid: int = ins.taskid) -> None:
                self._timers.discard(handle)  # type: ignore[arg-type]
                self.feed(RetryDue(job, taskid, self.clock()))

            handle = loop.call_later(max(0.0, ins.delay), due)
            self._timers.add(handle)
        elif isinstance(ins, ResolveInputs):
            self._spawn(self._resolve_inputs(ins.job, ins.urls))
        elif isinstance(ins, SaveJob):
            self._save(ins.job)
        elif isinstance(ins, ForgetTask):
            self._forget_task(ins.job, ins.taskid)
        elif isinstance(ins, SaveResults):
            self._spawn(self._save_results(ins.job, ins.results))
        elif isinstance(ins, JobFinished):
            log = self.logs.get(ins.job)
            if log is not None:
                log.close()  # 4.2: the log is closed when the job ends
            self._finished.set()
            self._finished = asyncio.Event()
        elif isinstance(ins, JobFailure):
            self.failures.setdefault(ins.job, FailureLog()).job_failed(
                Failure(ins.kind, ins.exc_type, ins.message, jobname=ins.job)
            )
        elif isinstance(ins, JobForgotten):
            self.records.pop(ins.job, None)
            self.attempts.forget(ins.job)
            log = self.logs.pop(ins.job, None)
            if log is not None:
                log.close()

    def input_signal(self, job: str, taskid: int) -> asyncio.Event:
        return self._signals.setdefault((job, taskid), asyncio.Event())

    def append_event(self, job: str, text: str, host: str = "master") -> None:
        log = self.logs.get(job)
        if log is None:
            if job not in self.records:
                return
            log = self.logs[job] = EventLog(self.config.master_root, job)
        log.append(host, text, self.clock())

    def _save(self, name: str) -> None:
        rec = self.records.get(name)
        job = self.coordinator.jobs.get(name)
        if rec is None or job is None:
            return
        rec.status = job.status
        rec.pipeline = job.counters()
        rec.results = list(job.results or [])
        rec.stage_results = dict(job.stage_results)
        self.store.save_job(rec)
        if rec.status != "active":
            self.store.forget_tasks(name)  # recovery needs them only while it runs
        if name in self.failures:
            self.store.save_failures(name, self.failures[name].to_json())

    async def _save_results(self, job: str, results: tuple[tuple[str, ...], ...]) -> None:
        """Write the job's results tag; a failure ends the job ``dead`` (ddfs.md 7.2)."""
        error: str | None = None
        try:
            if self.job_tags is None:
                raise RuntimeError("this master has no DDFS")
            await self.job_tags.save_results(job, results)
        except Exception as exc:
            logger.warning("saving the results of %s failed: %s", job, exc)
            error = str(exc) or type(exc).__name__
        if not self._closing:
            self.feed(ResultsSaved(job, error, self.clock()))

    async def _delete_oob(self, name: str) -> bool:
        """Delete the job's OOB tag (10.6); ``False`` (logged) when DDFS failed."""
        if self.job_tags is None:
            return True
        try:
            await self.job_tags.delete_oob(name)
        except Exception as exc:
            logger.warning("deleting the OOB tag of %s failed: %s", name, exc)
            return False
        return True

    # -- task attempts --------------------------------------------------------------------
    def _start_attempt(self, ins: StartTask) -> None:
        job = self.coordinator.jobs[ins.job]
        label = "%s:%d" % (ins.stage, ins.taskid)
        channel = AttemptChannel(self, ins.job, ins.taskid, ins.host, label, ins.attempt)
        spec = TaskSpec(
            jobname=ins.job,
            taskid=ins.taskid,
            stage=ins.stage,
            grouping=ins.grouping,
            group=ins.group,
            host=ins.host,
            attempt=ins.attempt,
            worker=job.spec.worker,
            jobenvs=dict(job.spec.jobenvs),
            jobpack_url=_jobpack_url(self.config.master_url, ins.job),
            master=self.config.master_url,
            disco_port=self.config.port,
            put_port=self.config.put_port,
            disco_data=self.config.disco_data,
            ddfs_data=self.config.ddfs_data,
            save_results=ins.save_results,
            auth_token=self.config.auth.token,
            channel_token=self.register_channel(channel),
        )
        key = (ins.job, ins.taskid, ins.attempt)
        self.attempts.started(ins.job, ins.stage, ins.taskid, ins.attempt, ins.host, self.clock())
        self._attempts[key] = asyncio.get_running_loop().create_task(
            self._run_attempt(key, spec, channel), name="disco-task-%s-%s" % key[:2]
        )

    def register_channel(self, channel: TaskChannel) -> str:
        """The token under which nodes reach ``channel`` (``POST /disco/ctrl/task_channel``)
        until ``unregister_channel``."""
        return self.channels.register(channel)

    def unregister_channel(self, token: str) -> None:
        """The attempt ended: its token answers 404, waiting requests end."""
        self.channels.unregister(token)

    async def _run_attempt(self, key: tuple[str, int, int], spec: TaskSpec, channel: Any) -> None:
        try:
            await self._attempt_to_end(key, spec, channel)
        finally:
            self.unregister_channel(spec.channel_token)

    async def _attempt_to_end(
        self, key: tuple[str, int, int], spec: TaskSpec, channel: Any
    ) -> None:
        started = self.clock()
        try:
            result = await self.backend.run_task(spec, channel)
        except asyncio.CancelledError:
            self.attempts.ended(*key, "killed", self.clock())
            raise
        except Exception as exc:
            logger.exception("task %s:%d attempt %d crashed in the backend", *key)
            self._attempts.pop(key, None)
            text = "Worker failed: %s" % exc
            failure = Failure("node", type(exc).__name__, text)
            self._check_attempt_nodes(key, spec.host)
            self._record_failure(key, spec, TaskFailed("error", text, failure))
            self.attempts.ended(*key, "failed", self.clock(), text)
            self.feed(AttemptFailed(*key, "error", text, self.clock()))
            return
        self._attempts.pop(key, None)
        if isinstance(result, TaskDone):
            self.attempts.ended(*key, "done", self.clock())
        else:
            reason = result.failure.headline if result.failure else result.message
            self.attempts.ended(*key, "failed", self.clock(), reason.split("\n", 1)[0])
        if self._closing:
            return
        if isinstance(result, TaskDone):
            duration = result.duration or (self.clock() - started)
            self.feed(AttemptDone(*key, tuple(result.outputs), duration, self.clock()))
        else:
            self._check_attempt_nodes(key, spec.host)
            self._record_failure(key, spec, result)
            if is_disk_full(result.message):
                await self._node_full(key[0], key[1], spec.host, result.partial_bytes)
            self.feed(AttemptFailed(*key, result.kind, result.message, self.clock()))

    def _check_attempt_nodes(self, key: tuple[str, int, int], host: str) -> None:
        """Before a failed attempt counts: is its node, or a node its inputs are on,
        gone?  Then the coordinator learns it first, and the attempt is a node failure
        (not counted) instead of the task's (it may even have been fatal: an input file
        that vanished with its node)."""
        task = self.coordinator.task(key[0], key[1])
        hosts = {host} | (set(task.input_hosts()) if task is not None else set())
        self.check_nodes(hosts, "disconnected; a task failed there or reading from it")

    async def _node_full(self, job: str, taskid: int, host: str, written: int) -> None:
        """An attempt failed for want of space: the task does not start on ``host``
        again until its disk has more free than the attempt had written plus a margin.
        (Not "what is free now": the attempt's partial outputs, and those of other
        attempts that failed with it, are already deleted, so that figure can exceed
        the whole disk for a task that failed only because a sibling filled it.)"""
        disk, free = await self.backend.data_disk(host)
        logger.warning("node %s: disk %s is full (%d bytes free)", host, disk, free)
        needed = written + MARGIN
        self.feed(NodeFull(job, taskid, host, disk, free, needed, self.clock()))

    def _record_failure(
        self, key: tuple[str, int, int], spec: TaskSpec, result: TaskFailed
    ) -> None:
        """Keep the failed attempt for jobinfo and JobError (a current attempt only)."""
        task = self.coordinator.task(key[0], key[1])
        if task is None or task.state != "running" or task.attempt != key[2]:
            return
        log = self.failures.setdefault(key[0], FailureLog())
        log.attempt_failed(
            result.kind,
            result.message,
            result.failure,
            timestamp(self.clock()),
            stage=spec.stage,
            taskid=spec.taskid,
            attempt=spec.attempt + 1,  # counted from 1, as in the events
            host=spec.host,
            jobname=spec.jobname,
        )

    # -- v1 dir:// inputs (6.4) -------------------------------------------------------------
    async def _resolve_inputs(self, job: str, urls: tuple[str, ...]) -> None:
        labels: dict[str, tuple[tuple[int, int], ...]] = {}
        url = urls[0] if urls else ""
        try:
            async with aiohttp.ClientSession() as session:
                for url in urls:
                    text = await self._fetch_index(session, url)
                    labels[url] = parse_index_labels(text)
        except Exception as exc:
            message = "Could not read input index %s: %s" % (url, exc)
            self.failures.setdefault(job, FailureLog()).job_failed(
                Failure("input", type(exc).__name__, message, input=url, jobname=job)
            )
            self.feed(InputsFailed(job, message, self.clock()))
            return
        self.feed(InputsResolved(job, labels, self.clock()))

    async def _fetch_index(self, session: aiohttp.ClientSession, url: str) -> str:
        rest = url.split("://", 1)[1]
        host, _, path = rest.partition("/")
        host = host.split(":")[0]
        if path.startswith("disco/"):
            local = os.path.join(self.config.disco_data, path[len("disco/") :])
            if os.path.isfile(local):
                with open(local, encoding="utf-8") as f:
                    return f.read()
        target = "http://%s:%d/%s" % (host, self.config.port, path)
        headers = auth.headers({auth.TOKEN_SETTING: self.config.auth.token})
        timeout = aiohttp.ClientTimeout(total=60)
        async with session.get(target, timeout=timeout, headers=headers) as resp:
            if resp.status != 200:
                raise OSError("HTTP %d from %s" % (resp.status, target))
            return await resp.text()

    # -- jobs: submit, kill, clean, purge ---------------------------------------------------
    def new_name(self, prefix: str) -> str:
        """``<prefix>@<mega>:<secs>:<micro>`` in hex from a strictly increasing clock (5)."""
        while True:
            us = max(int(self.clock() * 1_000_000), self._last_us + 1)
            self._last_us = us
            name = "%s@%x:%x:%x" % (prefix, us // 10**12, (us // 10**6) % 10**6, us % 10**6)
            if name not in self.records:
                return name

    async def submit(self, data: bytes) -> str:
        """Validate, name, store and start a job; raises ``JobPackError`` (2.2)."""
        spec = jobpack.decode(data)
        jobpack.check_has_inputs(spec)
        if self.store.read_only is not None:
            raise jobpack.JobPackError("the master is read-only: %s" % self.store.read_only)
        if self.job_tags is not None:
            missing = await self.job_tags.missing(jobpack.own_tag_names(spec))
            if missing:
                raise jobpack.JobPackError(
                    json.dumps("no such tag in DDFS: %s" % ", ".join("tag://" + t for t in missing))
                )
        name = self.new_name(spec.prefix)
        directory = job_dir(self.config.master_root, name)
        path = os.path.join(directory, "jobfile")
        try:
            await asyncio.get_running_loop().run_in_executor(None, write_pack, path, data)
        except OSError as exc:
            if not is_disk_full_error(exc):
                raise
            shutil.rmtree(directory, ignore_errors=True)
            disk, free = disk_of(self.config.master_root)
            logger.error("job pack of %s not stored, disk %s is full: %s", name, disk, exc)
            raise jobpack.JobPackError(
                "the disk of DISCO_MASTER_ROOT is full (%d bytes free, the job pack "
                "needs %d)" % (free, len(data))
            )
        now = self.clock()
        self._seq += 1
        rec = JobRecord(
            name=name,
            status="active",
            start=now,
            owner=spec.owner,
            worker=spec.worker,
            inputs=[u for i in spec.inputs if isinstance(i, jobpack.DataInput) for u in i.urls],
            pipeline=[[s.name, 0, 0, 0, 0, 0] for s in spec.pipeline],
            jobpack=path,
            seq=self._seq,
        )
        try:
            self.store.save_job(rec)
        except sqlite3.Error as exc:
            shutil.rmtree(directory, ignore_errors=True)
            if not is_disk_full_error(exc):
                raise
            logger.error("job %s not stored: %s", name, exc)
            raise jobpack.JobPackError("the disk of DISCO_MASTER_ROOT is full: %s" % exc)
        self.records[name] = rec
        self.logs[name] = EventLog(self.config.master_root, name)
        self.feed(JobSubmitted(name, spec, now))
        return name

    def kill(self, name: str) -> None:
        if self.status(name)[0] == "active":
            self.failures.setdefault(name, FailureLog()).job_failed(
                Failure("killed", "JobKilled", "the job was killed (kill_job)", jobname=name)
            )
        self.feed(KillRequested(name, self.clock()))

    def job_dir(self, name: str) -> str:
        """The job's master directory; ``UnsafeName`` when ``name`` is no job name or the
        directory leads out of the master root (``disco.safenames``)."""
        return job_dir(self.config.master_root, name)

    def jobpack_path(self, name: str) -> str:
        """The file of the job's pack (served at ``/disco/ctrl/parameters``)."""
        return os.path.join(self.job_dir(name), "jobfile")

    async def clean(self, name: str) -> None:
        """Kill, forget, delete the master directory (10.2).  The stored record goes
        last, so a clean cut short (or refused by a full disk) leaves no record of a
        job whose data is gone: ``start`` drops such records.

        Raises ``UnsafeName`` before anything changes when ``name`` is unsafe."""
        self.job_dir(name)
        self._forget(name)
        await self._remove_master_dir(name)
        self._delete_record(name)

    async def purge(self, name: str) -> None:
        """Kill and forget the job (at once: purge answers at once, 2.4), then delete its
        data on every node, its OOB tag and its master directory, and its stored record
        last (10.2; we do not wait for GC).  Deleting needs no free space, so a purge
        works on a full disk.  An OOB tag DDFS could not delete is retried by each GC
        pass.  Raises ``UnsafeName`` before anything changes when ``name`` is unsafe."""
        self.job_dir(name)
        self._forget(name)
        self.purged[name] = self.clock()
        for host, _ in self.nodes:
            try:
                await self.backend.remove_job_data(host, name)
            except Exception:
                logger.exception("removing data of %s on %s failed", name, host)
        if not await self._delete_oob(name):
            self._oob_to_delete.add(name)
        await self._remove_master_dir(name)
        self._delete_record(name)

    def _forget(self, name: str) -> None:
        """Kill the job and drop it from memory (its stored record stays for now)."""
        self.feed(KillRequested(name, self.clock(), forget=True))
        self.records.pop(name, None)
        self.attempts.forget(name)
        self.failures.pop(name, None)
        log = self.logs.pop(name, None)
        if log is not None:
            log.close()

    async def _remove_master_dir(self, name: str) -> None:
        directory = self.job_dir(name)
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: shutil.rmtree(directory, ignore_errors=True)
        )

    def _delete_record(self, name: str) -> None:
        if name in self.records:
            return  # submitted again meanwhile (same name): keep it
        try:
            self.store.delete_job(name)
        except sqlite3.Error as exc:
            # A full disk: the record stays in SQLite, but its job directory is gone,
            # so the next start drops it (it never comes back in joblist).
            logger.error("job %s: its record could not be deleted (%s)", name, exc)

    # -- queries ----------------------------------------------------------------------------
    def status(self, name: str) -> tuple[str, list[Any]]:
        job = self.coordinator.jobs.get(name)
        if job is not None:
            return job.status, (list(job.results or []) if job.status == "ready" else [])
        rec = self.records.get(name)
        if rec is None:
            return "unknown job", []
        return rec.status, (list(rec.results) if rec.status == "ready" else [])

    async def wait_results(self, timeout_ms: int, names: list[str]) -> list[list[Any]]:
        """2.4 ``get_results``: block until any named active job ends, or the timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_ms / 1000.0
        active = {n for n in names if self.status(n)[0] == "active"}
        while active and all(self.status(n)[0] == "active" for n in active):
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._finished.wait(), remaining)
        return [[n, list(self.status(n))] for n in names]

    def jobinfo(self, name: str) -> dict[str, Any] | None:
        rec = self.records.get(name)
        if rec is None:
            return None
        job = self.coordinator.jobs.get(name)
        status, results = self.status(name)
        if job is not None:
            pipeline, hosts = job.counters(), job.running_hosts()
        else:
            pipeline, hosts = rec.pipeline, []
        return {
            "timestamp": timestamp(rec.start),
            "active": status,
            "pipeline": pipeline,
            "results": [
                u for entry in results for u in ([entry] if isinstance(entry, str) else entry)
            ],
            "inputs": rec.inputs,
            "worker": rec.worker,
            "hosts": hosts,
            "owner": rec.owner,
            # Added to 0.5's shape: failed attempts and the last failure's report,
            # start and end as Unix seconds (end: None while active).
            **(self.failures[name].fields() if name in self.failures else NO_FAILURES),
            "start_time": rec.start,
            "end_time": None if status == "active" else self._end_time(name),
        }

    def _end_time(self, name: str) -> float | None:
        """When the job ended: the last write of its event log, which is closed when the
        job ends (4.2), so the answer is the same after a master restart."""
        try:
            return os.stat(os.path.join(job_dir(self.config.master_root, name), "events")).st_mtime
        except OSError:
            return None

    def joblist(self) -> list[list[Any]]:
        recs = sorted(self.records.values(), key=lambda r: r.seq, reverse=True)
        return [[int(r.start), self.status(r.name)[0], r.name] for r in recs]

    def stage_results(self, name: str, stage: str) -> list[list[str]] | None:
        job = self.coordinator.jobs.get(name)
        if job is not None:
            return job.stage_results.get(stage)
        rec = self.records.get(name)
        return rec.stage_results.get(stage) if rec is not None else None

    async def nodeinfo(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for host, node in sorted(self.coordinator.nodes.items()):
            entry: dict[str, Any] = {}
            tasks = self.coordinator.running_on(host)
            if tasks:
                entry["tasks"] = tasks
            free, used = await self.backend.disk_usage(host) if node.max_workers else (0, 0)
            down_reason = getattr(self.backend, "down_reason", None)
            reason = down_reason(host) if down_reason is not None else None
            if reason:
                entry["reason"] = reason  # [Not in 0.5] why a configured node is down
            entry.update(
                job_ok=node.job_ok,
                data_error=node.data_error,
                error=node.error,
                max_workers=node.max_workers,
                connected=node.connected,
                blacklisted=node.blacklisted,
                diskfree=free,
                diskused=used,
                # Added to 0.5's shape: when the master last saw the node connected.
                last_contact=self.last_contact.get(host),
                # Added to 0.5's shape (issue 8): why no task starts there, or null.
                disk_full=None if node.full is None else dataclasses.asdict(node.full),
                master_disk_full=self.master_disk,
            )
            info[host] = entry
        return info

    # -- cluster config and settings (2.3, 2.4, 3.4) ----------------------------------------
    async def apply_config(
        self, config: ClusterConfig, *, save: bool = True, first: bool = False
    ) -> None:
        """Expand, prune the blacklists, persist and apply a config (raises ConfigError).

        With a backend that has a node set (``Backend.node_set``), the nodes are its
        hosts; a table row for one of them sets its max_workers, other rows are unused
        (and the blacklists are kept: a host may come back)."""
        async with self._config_lock:
            await self._apply_config(config, save=save, first=first)

    async def _apply_config(self, config: ClusterConfig, *, save: bool, first: bool) -> None:
        table = expand_table(config.hosts)
        if first:
            await self.backend.start([h for h, _ in table])
        self._node_set = self.backend_node_set()
        nodes = self._nodes_from(table, self._node_set)
        hosts = [h for h, _ in nodes]
        if self._node_set is None:
            config.blacklist = [h for h in config.blacklist if h in hosts]
            config.gc_blacklist = [h for h in config.gc_blacklist if h in hosts]
        self.cluster, self.nodes = config, nodes
        if save:
            self.store.save_config(config)
        if not first or nodes != table:
            await self.backend.set_hosts(hosts)
        before = self._connected
        members = None if self._node_set is None else set(self._node_set)
        self._connected = {h: self._up(h, members) for h in hosts}
        self._seen(self.clock())
        self.feed(
            NodesConfigured(
                tuple(nodes),
                frozenset(config.blacklist),
                frozenset(h for h, c in self._connected.items() if c),
                self.clock(),
            )
        )
        for host, was in sorted(before.items()):
            if was and not self._connected.get(host, False):
                # left the backend's node set, dropped from the table (its data server
                # is gone) or disconnected: its running tasks and outputs are lost
                if members is not None and host not in members:
                    why = "it left the backend's node set"
                elif host not in hosts:
                    why = "dropped from the config table"
                else:
                    why = "disconnected"
                self._node_lost(host, why)

    def backend_node_set(self) -> dict[str, int] | None:
        """The backend's node set (``None``: the config table decides), valid names only."""
        node_set = getattr(self.backend, "node_set", None)
        found = node_set() if node_set is not None else None
        if found is None:
            return None
        nodes: dict[str, int] = {}
        for host, slots in found.items():
            try:
                check_host_name(host)
            except UnsafeName as exc:
                logger.warning("node set: host %r ignored: %s", host, exc)
                continue
            nodes[host] = max(0, int(slots))
        return nodes

    @staticmethod
    def _nodes_from(
        table: list[tuple[str, int]], node_set: dict[str, int] | None
    ) -> list[tuple[str, int]]:
        if node_set is None:
            return table
        rows = dict(table)  # a table row overrides the backend's slots of its host
        return [(h, rows.get(h, slots)) for h, slots in sorted(node_set.items())]

    async def check_config(self, config: ClusterConfig) -> None:
        """Refuse (``ConfigError``) a table naming hosts the backend cannot run."""
        check = getattr(self.backend, "check_hosts", None)
        if check is None:
            return
        refused = await check([h for h, _ in expand_table(config.hosts)])
        if refused:
            raise ConfigError("; ".join(refused[h] for h in sorted(refused)))

    async def reload_config(self) -> list[list[str]]:
        """``load_config_table``: re-read the stored configuration and apply it."""
        config = self.store.load_config()
        try:
            await self.apply_config(config, save=False)
        except ValueError as exc:
            logger.error("stored config table is invalid: %s", exc)
        return config.hosts

    async def set_listed(self, which: str, host: str, listed: bool) -> None:
        """Add/remove a configured host to/from ``blacklist`` or ``gc_blacklist`` (2.4)."""
        if host not in {h for h, _ in self.nodes}:
            return  # unknown hosts are silently ignored
        current: list[str] = getattr(self.cluster, which)
        if listed and host not in current:
            current.append(host)
        elif not listed and host in current:
            current.remove(host)
        await self.apply_config(self.cluster)

    def save_settings(self, max_failure_rate: int | None, accept_new_jobs: int | None) -> None:
        if max_failure_rate is not None:
            self.max_failure_rate = max_failure_rate
            self.store.set_setting("max_failure_rate", max_failure_rate)
            self.feed(SettingsChanged(max_failure_rate, self.clock()))
        if accept_new_jobs is not None:
            self.accept_new_jobs = accept_new_jobs
            self.store.set_setting("accept_new_jobs", accept_new_jobs)

    # -- periodic work --------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._node_set is not None and self.backend_node_set() != self._node_set:
                try:
                    await self.apply_config(self.cluster, save=False)
                except Exception:
                    logger.exception("applying the backend's new node set failed")
            self._seen(self.clock())
            self.check_nodes(set(self._connected))
            await self._check_full_nodes()
            self.check_master_disk()
            if any(j.status == "active" for j in self.coordinator.jobs.values()):
                self.feed(Tick(self.clock()))

    def check_nodes(self, hosts: set[str], why: str = "disconnected") -> None:
        """Are these configured hosts still there?  Feed ``NodeConnected`` /
        ``NodeLost`` for those that changed (10.4).  A host is there when the backend
        says it is connected and, for a backend with a node set of its own
        (``Backend.node_set()``, the Dask backend), is in that set."""
        members = self._members()
        for host in sorted(hosts):
            was = self._connected.get(host)
            if was is None:
                continue  # not a configured node (an outside URL)
            now_up = self._up(host, members)
            if now_up == was:
                continue
            self._connected[host] = now_up
            if now_up:
                self.feed(NodeConnected(host, self.clock()))
            elif members is not None and host not in members:
                self._node_lost(host, "it left the backend's node set")
            else:
                self._node_lost(host, why)

    def _members(self) -> set[str] | None:
        """The backend's node set now (``Backend.node_set()``), or ``None`` when the
        config table alone decides the nodes (the local backend)."""
        current = self.backend_node_set()
        return None if current is None else set(current)

    def _up(self, host: str, members: set[str] | None) -> bool:
        return (members is None or host in members) and self.backend.is_connected(host)

    def _node_lost(self, host: str, why: str) -> None:
        """Feed ``NodeLost`` once per loss (several signals may report the same one)."""
        if self._closing or host in self.coordinator.lost:
            return
        active = any(j.status == "active" for j in self.coordinator.jobs.values())
        logger.log(
            logging.WARNING if active else logging.INFO,
            "node %s lost (%s): its running tasks and its outputs are gone",
            host,
            why,
        )
        self.feed(NodeLost(host, self.clock()))

    def check_master_disk(self) -> None:
        """The master's own disk: log when it fills up or has space again, and go back
        to read-write once a store opened read-only can write again."""
        disk, free = disk_of(self.config.master_root)
        if self.store.read_only is not None and free >= MARGIN and self.store.try_writable():
            logger.warning("the master's disk %s has space again: read-write", disk)
        full = free < MARGIN or self.store.read_only is not None
        if full and self.master_disk is None:
            logger.error(
                "the master's disk %s is full (%d bytes free)%s",
                disk,
                free,
                ": serving read-only, no new jobs" if self.store.read_only else "",
            )
        elif not full and self.master_disk is not None:
            logger.warning("the master's disk %s has space again (%d bytes free)", disk, free)
        self.master_disk = (
            {
                "disk": disk,
                "free": free,
                "read_only": self.store.read_only is not None,
                "reason": self.store.read_only or "less than %d bytes free" % MARGIN,
            }
            if full
            else None
        )

    async def _check_full_nodes(self) -> None:
        """Tell the coordinator how much is free on the nodes tasks wait for space on."""
        for host, node in list(self.coordinator.nodes.items()):
            if node.full is not None:
                _disk, free = await self.backend.data_disk(host)
                if free >= node.full.needed:
                    logger.info("node %s: space is back (%d bytes free)", host, free)
                self.feed(NodeSpaceBack(host, free, self.clock()))

    def _seen(self, now: float) -> None:
        """Note the time of contact with every node that is connected now."""
        for host, connected in self._connected.items():
            if connected:
                self.last_contact[host] = now

    async def _gc_loop(self) -> None:
        interval = max(1.0, self.config.gc_interval * 3600.0)
        while True:
            try:
                await self.gc_once()
            except Exception:
                logger.exception("job data GC pass failed")
            await asyncio.sleep(interval)

    async def gc_once(self) -> list[tuple[str, str]]:
        """One temp-GC pass over every node's job directories (10.6); returns removals."""
        now = self.clock()
        self.purged = {n: t for n, t in self.purged.items() if now - t < PURGED_RETENTION}
        removed: list[tuple[str, str]] = []
        for name in sorted(self._oob_to_delete):
            if await self._delete_oob(name):
                self._oob_to_delete.discard(name)
        oob_deleted: dict[str, bool] = {}
        for host, _ in self.nodes:
            base = os.path.join(self.config.disco_data, host)
            for path, name in job_dirs(base):
                if not valid_name(name, JOB_NAME_MAX) or self.status(name)[0] == "active":
                    continue
                try:
                    mtime = os.stat(path).st_mtime
                except OSError:
                    continue
                if name in self.purged or now - mtime > self.config.gc_after:
                    # 10.6: the OOB tag goes first; if DDFS fails the data waits a pass
                    if name not in oob_deleted:
                        oob_deleted[name] = await self._delete_oob(name)
                    if not oob_deleted[name]:
                        continue
                    await self.backend.remove_job_data(host, name)
                    removed.append((host, name))
        return removed
