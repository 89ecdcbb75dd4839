"""The runtime of one Disco node inside a process of that node's host (Dask backend).

A ``NodeService`` is what a remote node runs, on the event loop of the process that
hosts it (a ``dask worker``): the data server on ``(host, DISCO_PORT)`` (master-api.md
2.9), the DDFS upload server on ``(host, DDFS_PUT_PORT)`` (ddfs.md 2.4.2), the job home
cache (one extraction per job per host, locked across the processes of the host) and
the runner of task attempts (``disco.node.runner.run_worker``), which can kill an
attempt by its key.

Several processes of one host (several ``dask worker``s) each have a service; the first
that binds the two ports serves the host's data, the others retry each second so that
one of them takes over when the serving process dies.  Every service runs attempts: they
all write below the same ``<DISCO_DATA>/<host>/`` tree, served by whichever binds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import fcntl
import logging
import os
import shutil
from typing import Any

from aiohttp import web

from disco.auth import AuthPolicy
from disco.backends.base import TaskChannel, TaskFailed, TaskResult, TaskSpec
from disco.ddfs.blobserver import create_put_app
from disco.ddfs.gate import TransferGate
from disco.ddfs.node import DDFSNode
from disco.node.dataserver import ServedBytes, create_data_app
from disco.node.diskspace import disk_of
from disco.node.jobhome import (
    JobHomeError,
    check_jobname,
    ensure_jobhome,
    jobhome_path,
    safe_member_path,
)
from disco.node.orphans import WorkerRegistry
from disco.node.runner import WorkerLimits, is_standard_launcher, jobhome_failed, run_worker
from disco.node.zygote import Zygote
from disco.safenames import check_host_name, no_symlink_below

logger = logging.getLogger(__name__)

BIND_RETRY = 1.0  # seconds between two tries to take over the host's ports


def attempt_key(spec: TaskSpec) -> str:
    """The name of an attempt on its node: ``<job>:<stage>:<taskid>:<attempt>``."""
    return "%s:%s:%d:%d" % (spec.jobname, spec.stage, spec.taskid, spec.attempt)


class NodeService:
    """One node's servers and task runner in this process (see the module docstring)."""

    def __init__(
        self,
        host: str,
        *,
        disco_data: str,
        ddfs_data: str,
        disco_port: int,
        put_port: int | None,
        auth: AuthPolicy | None = None,
        limits: WorkerLimits | None = None,
        use_zygote: bool = True,
    ) -> None:
        check_host_name(host)
        self.host = host
        self.disco_data = disco_data
        self.ddfs_data = ddfs_data
        self.disco_port = disco_port
        self.put_port = put_port
        self.auth = auth or AuthPolicy()
        self.limits = limits or WorkerLimits()
        self.ddfs = DDFSNode(host, ddfs_data)
        self.served = ServedBytes()
        self._runners: list[web.AppRunner] = []
        self._binder: asyncio.Task[None] | None = None
        self.attempts: dict[str, asyncio.Task[TaskResult]] = {}
        self.use_zygote = use_zygote
        self._zygote: Zygote | None = None
        self._zygote_lock = asyncio.Lock()
        self.registry = WorkerRegistry(os.path.join(disco_data, host, ".disco-workers"))
        self._closed = False

    # -- servers ---------------------------------------------------------------------------
    @property
    def serving(self) -> bool:
        """Does this process serve the host's data (it bound the ports)?"""
        return bool(self._runners)

    async def start(self) -> None:
        """Serve the host's ports, or keep trying in the background if another process
        of the host has them."""
        os.makedirs(os.path.join(self.disco_data, self.host), exist_ok=True)
        await asyncio.to_thread(self.registry.reap)  # workers of a dead process of this host
        if not await self._bind():
            self._binder = asyncio.create_task(self._keep_binding())

    async def _bind(self) -> bool:
        apps: list[tuple[web.Application, int]] = [
            (
                create_data_app(
                    self.disco_data,
                    self.ddfs_data,
                    ddfs_gate=TransferGate(),
                    auth=self.auth,
                    served=self.served,
                ),
                self.disco_port,
            )
        ]
        if self.put_port is not None:
            # the DDFS master's node operations too; replicas come from the peers' data servers
            app = create_put_app(self.ddfs, auth=self.auth, disco_port=self.disco_port)
            apps.append((app, self.put_port))
        runners: list[web.AppRunner] = []
        try:
            for app, port in apps:
                runner = web.AppRunner(app, access_log=None)
                await runner.setup()
                runners.append(runner)
                await web.TCPSite(runner, self.host, port, reuse_address=True).start()
        except OSError as exc:
            for runner in runners:
                await runner.cleanup()
            logger.debug("node %s: ports taken (%s); another process serves them", self.host, exc)
            return False
        self._runners = runners
        logger.info(
            "node %s: data server on %s:%d, DDFS upload server on port %s",
            self.host,
            self.host,
            self.disco_port,
            self.put_port,
        )
        return True

    async def _keep_binding(self) -> None:
        while not self._closed and not await self._bind():
            await asyncio.sleep(BIND_RETRY)

    # -- status ----------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Disk figures of the node: ``diskfree``/``diskused`` KiB, ``data_disk``."""
        free, used = self.ddfs.disk_usage()
        mount, data_free = disk_of(self.disco_data)
        return {
            "diskfree": free,
            "diskused": used,
            "data_disk": [mount, data_free],
            "serving": self.serving,
        }

    # -- task attempts ---------------------------------------------------------------------
    async def run(self, spec: TaskSpec, channel: TaskChannel) -> TaskResult:
        """Run one attempt here (job home, then ``run_worker``); ``kill(key)`` or
        cancelling the caller kills it."""
        spec = dataclasses.replace(spec, disco_data=self.disco_data, ddfs_data=self.ddfs_data)
        key = attempt_key(spec)
        if self._closed:
            return TaskFailed("error", "Node %s is shutting down" % self.host)
        task = asyncio.create_task(self._run(spec, channel), name="disco-attempt-%s" % key)
        self.attempts[key] = task
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            raise
        finally:
            if self.attempts.get(key) is task:
                del self.attempts[key]

    async def _run(self, spec: TaskSpec, channel: TaskChannel) -> TaskResult:
        try:
            jobhome = await self._jobhome(spec)
        except JobHomeError as exc:
            return jobhome_failed(exc)
        worker = safe_member_path(jobhome, spec.worker)
        zygote = None
        if worker is not None and is_standard_launcher(worker):
            zygote = await self._get_zygote()
        try:
            return await run_worker(
                spec, channel, jobhome, limits=self.limits, zygote=zygote, registry=self.registry
            )
        except asyncio.CancelledError:
            if self._closed:
                return TaskFailed("error", "Node %s is shutting down" % self.host)
            raise

    async def _jobhome(self, spec: TaskSpec) -> str:
        """``ensure_jobhome`` under a file lock: the processes of a host share job homes."""
        home = jobhome_path(self.disco_data, spec.host, spec.jobname)
        os.makedirs(os.path.dirname(home), exist_ok=True)
        lock_path = home + ".lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
            return await ensure_jobhome(spec)
        finally:
            os.close(fd)  # releases the lock

    async def kill(self, key: str) -> bool:
        """Kill the attempt ``key`` if it runs here and wait until it is gone."""
        task = self.attempts.get(key)
        if task is None:
            return False
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return True

    async def _get_zygote(self) -> Zygote | None:
        if not self.use_zygote or self._closed:
            return None
        async with self._zygote_lock:
            if self._zygote is None or not self._zygote.alive:
                if self._zygote is not None:
                    await self._zygote.close()
                zygote = Zygote(self.registry)
                try:
                    await zygote.start()
                except OSError as exc:
                    logger.warning("node %s: no zygote, workers start normally: %s", self.host, exc)
                    self.use_zygote = False
                    return None
                self._zygote = zygote
            return self._zygote

    async def remove_job_data(self, jobname: str) -> None:
        """Delete ``<DISCO_DATA>/<host>/<hh>/<jobname>`` (purge, GC)."""
        check_jobname(jobname)
        path = jobhome_path(self.disco_data, self.host, jobname)
        no_symlink_below(self.disco_data, path, "job name")
        if os.path.isdir(path):
            await asyncio.to_thread(shutil.rmtree, path, True)
        try:
            os.unlink(path + ".lock")
        except OSError:
            pass

    async def close(self) -> None:
        self._closed = True
        if self._binder is not None:
            self._binder.cancel()
            await asyncio.gather(self._binder, return_exceptions=True)
        attempts = list(self.attempts.values())
        for task in attempts:
            task.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)
        for runner in self._runners:
            await runner.cleanup()
        self._runners = []
        if self._zygote is not None:
            await self._zygote.close()
            self._zygote = None
