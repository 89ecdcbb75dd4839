"""The runtime of one Disco node inside a process of that node's host (Dask backend).

A ``NodeService`` is what a remote node runs, on the event loop of the process that
hosts it (a ``dask worker``): the data server on ``(host, DISCO_PORT)`` (master-api.md
2.9), the DDFS upload server on ``(host, DDFS_PUT_PORT)`` (ddfs.md 2.4.2), the job home
cache (one extraction per job per host, locked across the processes of the host) and
the runner of task attempts (``disco.node.attempts.AttemptRunner``, as the local backend
has), which can kill an attempt by its key.

Several processes of one host (several ``dask worker``s) each have a service; the first
that binds the two ports serves the host's data, the others retry each second so that
one of them takes over when the serving process dies.  Every service runs attempts: they
all write below the same ``<DISCO_DATA>/<host>/`` tree, served by whichever binds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from typing import Any

from aiohttp import web

from disco.auth import AuthPolicy
from disco.backends.base import TaskChannel, TaskFailed, TaskResult, TaskSpec
from disco.ddfs.blobserver import create_put_app
from disco.ddfs.node import DDFSNode
from disco.node.attempts import AttemptRunner
from disco.node.dataserver import ServedBytes
from disco.node.diskspace import disk_of
from disco.node.jobhome import ensure_jobhome_locked, remove_job_data
from disco.node.orphans import WorkerRegistry
from disco.node.runner import WorkerLimits
from disco.node.serving import node_data_app, serve_first
from disco.node.zygote import ZygoteHolder
from disco.safenames import check_host_name

logger = logging.getLogger(__name__)

BIND_RETRY = 1.0  # seconds between two tries to take over the host's ports


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
        self.ddfs = DDFSNode(host, ddfs_data)
        self.served = ServedBytes()
        self._runners: list[web.AppRunner] = []
        self._binder: asyncio.Task[None] | None = None
        self.registry = WorkerRegistry(os.path.join(disco_data, host, ".disco-workers"))
        zygotes = ZygoteHolder(self.registry, enabled=use_zygote, where="node %s: " % host)
        # the host's processes share its job homes: each is prepared under a file lock
        self.runner = AttemptRunner(
            self.registry, zygotes, limits=limits, ensure=ensure_jobhome_locked
        )
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
        apps = [
            (
                node_data_app(self.disco_data, self.ddfs_data, self.auth, self.served),
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
                runner, _ = await serve_first(app, [self.host], port)
                runners.append(runner)
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
        if self._closed:
            return TaskFailed("error", "Node %s is shutting down" % self.host)
        return await self.runner.run(spec, channel)

    async def kill(self, key: str) -> bool:
        """Kill the attempt ``key`` (``attempt_key``) if it runs here and wait until it is
        gone."""
        return await self.runner.kill(key)

    async def remove_job_data(self, jobname: str) -> None:
        """Delete ``<DISCO_DATA>/<host>/<hh>/<jobname>`` (purge, GC)."""
        await remove_job_data(self.disco_data, self.host, jobname)

    async def close(self) -> None:
        self._closed = True
        if self._binder is not None:
            self._binder.cancel()
            await asyncio.gather(self._binder, return_exceptions=True)
        await self.runner.close()  # kills the attempts, stops the zygote
        for runner in self._runners:
            await runner.cleanup()
        self._runners = []
