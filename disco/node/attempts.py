"""Running the task attempts of a node: the part every node runtime shares.

Owns: preparing an attempt (the job home, then the zygote, only for our standard
launcher), running it with ``disco.node.runner.run_worker``, killing it (cancel the
caller, or ``kill(key)``) and killing all at ``close()``.  Used by the local backend (one
runner, one zygote and one worker registry for all its simulated hosts) and by
``disco.node.service.NodeService`` (one host's runtime in a Dask worker process).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from disco.backends.base import TaskChannel, TaskFailed, TaskResult, TaskSpec
from disco.node.jobhome import (
    MARKER,
    JobHomeError,
    ensure_jobhome,
    jobhome_path,
    ready_jobhome,
    safe_member_path,
)
from disco.node.orphans import WorkerRegistry
from disco.node.runner import WorkerLimits, is_standard_launcher, jobhome_failed, run_worker
from disco.node.zygote import Zygote, ZygoteHolder

logger = logging.getLogger(__name__)

Prepared = tuple[str, Zygote | None]  # the job home, the zygote to fork the worker from


def attempt_key(spec: TaskSpec) -> str:
    """The name of an attempt on its node: ``<job>:<stage>:<taskid>:<attempt>``."""
    return "%s:%s:%d:%d" % (spec.jobname, spec.stage, spec.taskid, spec.attempt)


async def prepare_attempt(
    spec: TaskSpec,
    zygotes: ZygoteHolder,
    ensure: Callable[[TaskSpec], Awaitable[str]] = ensure_jobhome,
) -> Prepared | TaskFailed:
    """The job home (``ensure``), then the zygote if the job's worker is our standard
    launcher (any other worker starts with ``/bin/sh``)."""
    try:
        jobhome = await ensure(spec)
    except JobHomeError as exc:
        return jobhome_failed(exc)
    worker = safe_member_path(jobhome, spec.worker)
    zygote = None
    if worker is not None and is_standard_launcher(worker):
        zygote = await zygotes.get()
    return jobhome, zygote


def _home_ready(spec: TaskSpec) -> bool:
    """Is the job home already prepared (no wait to bound with ``start_timeout``)?"""
    if ready_jobhome(spec) is not None:
        return True
    try:
        home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    except Exception:
        return False
    return os.path.exists(os.path.join(home, MARKER))


class AttemptRunner:
    """Runs a node's attempts (see the module docstring).

    ``ensure``: how the job home is prepared (``ensure_jobhome``, or
    ``ensure_jobhome_locked`` where several processes share the host's job homes).
    ``timed_start``: the preparation must end within ``limits.start_timeout`` (else the
    attempt fails; the preparation then finishes in the background).  ``closed_text``:
    the failure of an attempt killed, or refused, because the node closes (``%s``: host).
    """

    def __init__(
        self,
        registry: WorkerRegistry,
        zygotes: ZygoteHolder,
        *,
        limits: WorkerLimits | None = None,
        ensure: Callable[[TaskSpec], Awaitable[str]] = ensure_jobhome,
        timed_start: bool = False,
        closed_text: str = "Node %s is shutting down",
    ) -> None:
        self.registry = registry
        self.zygotes = zygotes
        self.limits = limits or WorkerLimits()
        self.ensure = ensure
        self.timed_start = timed_start
        self.closed_text = closed_text
        self.attempts: dict[str, asyncio.Task[TaskResult]] = {}  # by attempt_key
        self._running: set[asyncio.Task[TaskResult]] = set()
        self._preparing: set[asyncio.Task[Any]] = set()
        self._closing: set[asyncio.Task[Any]] = set()  # callers' tasks close() cancelled
        self._killing: set[str] = set()  # attempts kill() cancelled
        self._waiters: dict[asyncio.Task[Any], list[asyncio.Future[None]]] = {}
        self._closed = False

    def _closed_failure(self, spec: TaskSpec) -> TaskFailed:
        return TaskFailed("error", self.closed_text % spec.host)

    async def run(self, spec: TaskSpec, channel: TaskChannel) -> TaskResult:
        """Prepare, then run the worker; cancelling the caller (or ``kill``) kills it.

        The attempt runs in the caller's task (no task and ``shield`` of its own: one
        loop iteration less per attempt); ``kill`` and ``close`` cancel that task.  A
        cancel by ``close`` ends in the node's failure, not ``CancelledError``."""
        if self._closed:
            return self._closed_failure(spec)
        key = attempt_key(spec)
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        self.attempts[key] = task
        try:
            if self.timed_start and not _home_ready(spec):
                prepared = await self._prepare_in_time(spec)
            else:
                prepared = await self._prepare(spec)
            if isinstance(prepared, TaskFailed):
                return prepared
            jobhome, zygote = prepared
            return await run_worker(
                spec, channel, jobhome, limits=self.limits, zygote=zygote, registry=self.registry
            )
        except asyncio.CancelledError:
            if self._closed and task in self._closing:  # killed by close(), not by a caller
                self._closing.discard(task)
                task.uncancel()
                return self._closed_failure(spec)
            if key in self._killing:  # kill(key): the caller sees the cancel, as before
                task.uncancel()
            raise
        finally:
            self._running.discard(task)
            self._killing.discard(key)
            if self.attempts.get(key) is task:
                del self.attempts[key]
            for fut in self._waiters.pop(task, ()):
                if not fut.done():
                    fut.set_result(None)

    async def _prepare(self, spec: TaskSpec) -> Prepared | TaskFailed:
        return await prepare_attempt(spec, self.zygotes, self.ensure)

    async def _prepare_in_time(self, spec: TaskSpec) -> Prepared | TaskFailed:
        """The job home and the zygote within ``start_timeout`` (M 8.8: ``Worker did not
        start in 60s at <host>``).  The preparation is never cut short: it holds the job
        home lock until the extraction is complete, so on a timeout (or a kill) it
        finishes in the background and the next attempt finds the job home ready."""
        prepare = asyncio.create_task(self._prepare(spec))
        self._preparing.add(prepare)
        prepare.add_done_callback(self._prepared)
        done, _ = await asyncio.wait({prepare}, timeout=self.limits.start_timeout)
        if not done:
            return TaskFailed(
                "error",
                "Worker did not start in %gs at %s" % (self.limits.start_timeout, spec.host),
            )
        return prepare.result()

    def _prepared(self, task: asyncio.Task[Any]) -> None:
        self._preparing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.debug("job home preparation failed: %s", task.exception())

    async def kill(self, key: str) -> bool:
        """Kill the attempt ``key`` if it runs here and wait until it is gone."""
        task = self.attempts.get(key)
        if task is None:
            return False
        self._killing.add(key)
        ended = self._ended(task)
        task.cancel()
        await ended
        return True

    def _ended(self, task: asyncio.Task[Any]) -> asyncio.Future[None]:
        """A future set when the attempt running in ``task`` (its caller's) has ended."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(task, []).append(fut)
        return fut

    async def close(self) -> None:
        """Refuse new attempts, kill the running ones, stop the zygote."""
        self._closed = True
        self.zygotes.stop()
        running = list(self._running)
        ended = [self._ended(task) for task in running]
        self._closing.update(running)
        for task in running:  # the callers' tasks: each attempt ends with the node's failure
            task.cancel()
        preparing = list(self._preparing)
        for task in preparing:
            task.cancel()
        await asyncio.gather(*ended, *preparing, return_exceptions=True)
        self._closing.clear()
        await self.zygotes.close()
