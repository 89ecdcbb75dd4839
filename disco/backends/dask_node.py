"""What the Dask backend runs inside the ``dask worker`` processes (needs ``distributed``).

``DiscoNodePlugin`` is the worker plugin the master registers on connect: in each
worker process it starts a ``disco.node.service.NodeService`` for the worker's host (the
first process of the host that binds ``DISCO_PORT`` and ``DDFS_PUT_PORT`` on the host's
address serves its data).  The node's ``DISCO_DATA`` and ``DDFS_DATA`` are the worker
process's own settings (environment or settings file, ``disco.settings``); the ports and
the auth policy are the master's, carried by the plugin.

The other functions are what the master submits or runs on a worker: ``run_disco_task``
(one task attempt, on the worker's event loop), ``kill_disco_attempt``,
``disco_node_status`` and ``remove_disco_job_data``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from distributed import WorkerPlugin, get_worker
from distributed.comm import get_address_host

from disco.auth import AuthPolicy
from disco.backends.base import TaskFailed, TaskResult, TaskSpec
from disco.node.attempts import attempt_key
from disco.node.jobhome import jobhome_path
from disco.node.service import NodeService
from disco.settings import DiscoSettings

logger = logging.getLogger(__name__)

PLUGIN_NAME = "disco-node"

# The node service of each worker in this process, by worker address.
_SERVICES: dict[str, NodeService] = {}


class DiscoNodePlugin(WorkerPlugin):
    """Starts (``setup``) and stops (``teardown``) the Disco node in a worker process."""

    name = PLUGIN_NAME

    def __init__(
        self, disco_port: int, put_port: int | None, auth: AuthPolicy, use_zygote: bool = True
    ) -> None:
        self.disco_port = disco_port
        self.put_port = put_port
        self.auth = auth
        self.use_zygote = use_zygote

    async def setup(self, worker: Any) -> None:
        settings = DiscoSettings()
        host = get_address_host(worker.address)
        service = NodeService(
            host,
            disco_data=str(settings["DISCO_DATA"]),
            ddfs_data=str(settings["DDFS_DATA"]),
            disco_port=self.disco_port,
            put_port=self.put_port,
            auth=self.auth,
            use_zygote=self.use_zygote,
        )
        await service.start()
        old = _SERVICES.pop(worker.address, None)
        if old is not None:
            await old.close()
        _SERVICES[worker.address] = service

    async def teardown(self, worker: Any) -> None:
        service = _SERVICES.pop(worker.address, None)
        if service is not None:
            await service.close()


def _service(address: str) -> NodeService | None:
    return _SERVICES.get(address)


def _first_run(service: NodeService, spec: TaskSpec) -> bool:
    """Mark the attempt as started on this host; ``False`` if it was already: Dask runs
    a task again when the worker running it died, but a Disco attempt runs once (the
    master re-runs the task as a new attempt)."""
    stage = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.stage)
    home = jobhome_path(service.disco_data, spec.host, spec.jobname)
    markers = os.path.join(home, ".disco", "attempts")
    os.makedirs(markers, exist_ok=True)
    try:
        fd = os.open(
            os.path.join(markers, "%s-%d-%d" % (stage, spec.taskid, spec.attempt)),
            os.O_CREAT | os.O_EXCL | os.O_WRONLY,
            0o644,
        )
    except FileExistsError:
        return False
    os.close(fd)
    return True


async def run_disco_task(spec: TaskSpec) -> TaskResult:
    """Run one task attempt on this worker's node; its channel is the master's
    ``/disco/ctrl/task_channel`` (``RemoteTaskChannel``)."""
    from disco.backends.channel import RemoteTaskChannel

    worker = get_worker()
    service = _service(worker.address)
    if service is None:
        return TaskFailed(
            "error",
            "Node %s: no Disco node runtime in Dask worker %s" % (spec.host, worker.address),
        )
    if not _first_run(service, spec):
        return TaskFailed("error", "Node %s lost the Dask worker that ran this attempt" % spec.host)
    channel = RemoteTaskChannel(spec.master, spec.channel_token, spec.auth_token)
    try:
        return await service.run(spec, channel)
    finally:
        close = getattr(channel, "close", None)
        if close is not None:
            await close()


async def kill_disco_attempt(key: str, dask_worker: Any) -> bool:
    """Kill the attempt ``key`` (``attempt_key``) if it runs in this worker; wait for it."""
    service = _service(dask_worker.address)
    return await service.kill(key) if service is not None else False


def disco_node_status(dask_worker: Any) -> dict[str, Any] | None:
    """Disk figures of this worker's node, ``None`` before the plugin has started it."""
    service = _service(dask_worker.address)
    return service.status() if service is not None else None


async def remove_disco_job_data(jobname: str, dask_worker: Any) -> bool:
    """Delete the job's data directory on this worker's node."""
    service = _service(dask_worker.address)
    if service is None:
        return False
    await service.remove_job_data(jobname)
    return True


__all__ = [
    "PLUGIN_NAME",
    "DiscoNodePlugin",
    "attempt_key",
    "disco_node_status",
    "kill_disco_attempt",
    "remove_disco_job_data",
    "run_disco_task",
]
