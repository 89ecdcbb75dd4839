"""The Dask backend: the nodes are the hosts of a ``dask.distributed`` cluster.

Set ``DISCO_DASK_SCHEDULER`` (or ``disco start --dask ADDRESS``) and the master connects
an asynchronous ``distributed.Client`` to that scheduler.  On connect it registers
``DiscoNodePlugin`` (``disco.backends.dask_node``), which starts the Disco node runtime in
every worker process, once per host serving its data (``disco.node.service``).

- A node is a host running Dask workers; its name is the host the workers report
  (``127.0.0.2``, ``node7.example.com``).  ``node_set()`` is ``{host: threads}`` of the
  workers the scheduler has now, polled each second: workers that join or leave change
  the node set while the master runs.
- ``run_task`` submits ``run_disco_task(spec)`` to the workers of the attempt's host
  (``workers=[...]``, ``allow_other_workers=False``: never moved to another node), which
  runs the Disco worker process with ``run_worker`` on the worker's event loop and talks
  to the master through ``RemoteTaskChannel``.  Cancelling ``run_task`` kills the attempt
  (``client.run(kill_disco_attempt)`` on the host's workers) and waits for it.
- A lost worker or host: the running attempt ends ``TaskFailed("error", "Node <host>
  lost ...")``, so the master runs the task again elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from disco.auth import AuthPolicy
from disco.backends.base import TaskChannel, TaskDone, TaskFailed, TaskResult, TaskSpec
from disco.ddfs.nodehttp import HttpNodeStore
from disco.node.attempts import attempt_key

logger = logging.getLogger(__name__)

POLL_INTERVAL = 1.0  # seconds between two looks at the scheduler's workers
STATUS_INTERVAL = 5.0  # seconds between two collections of the nodes' disk figures
RUN_TIMEOUT = 30.0  # seconds a client.run on workers (kill, status, purge) may take
CONNECT_TIMEOUT = 20.0  # seconds the master tries to reach the scheduler at start-up


class DaskBackend:
    """``Backend`` whose nodes are the hosts of a Dask cluster (see the module docstring)."""

    def __init__(
        self,
        scheduler: str,
        *,
        disco_port: int,
        put_port: int | None,
        auth: AuthPolicy | None = None,
        use_zygote: bool = True,
        poll_interval: float = POLL_INTERVAL,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self.scheduler = scheduler
        self.disco_port = disco_port
        self.put_port = put_port
        self.auth = auth or AuthPolicy()
        self.use_zygote = use_zygote
        self.poll_interval = poll_interval
        self.connect_timeout = connect_timeout
        self.client: Any = None
        self._workers: dict[str, list[str]] = {}  # host -> worker addresses
        self._threads: dict[str, int] = {}  # host -> Dask threads
        self._status: dict[str, dict[str, Any]] = {}  # host -> disco_node_status()
        self._status_at = 0.0
        self._poller: asyncio.Task[None] | None = None
        self._closed = False
        self._stores: dict[str, HttpNodeStore] = {}  # host -> its DDFS storage over HTTP

    # -- connection and node set -----------------------------------------------------------
    async def start(self, hosts: list[str]) -> None:
        """Connect to the scheduler, start the node runtimes, learn the node set."""
        from distributed import Client

        from disco.backends.dask_node import PLUGIN_NAME, DiscoNodePlugin

        try:
            self.client = await Client(
                self.scheduler,
                asynchronous=True,
                name="disco-master",
                set_as_default=False,
                timeout=self.connect_timeout,
            )
        except (OSError, ValueError) as exc:  # ValueError: not a scheduler address
            raise OSError(
                "cannot connect to the Dask scheduler %s (DISCO_DASK_SCHEDULER): %s"
                % (self.scheduler, exc)
            ) from exc
        plugin = DiscoNodePlugin(self.disco_port, self.put_port, self.auth, self.use_zygote)
        await self.client.register_plugin(plugin, name=PLUGIN_NAME)
        await self._refresh()
        self._poller = asyncio.create_task(self._poll(), name="disco-dask-nodes")
        logger.info("Dask cluster %s: nodes %s", self.scheduler, self.node_set())

    async def set_hosts(self, hosts: list[str]) -> None:
        """The config table changed: nothing to start, the nodes are the Dask workers'."""

    def node_set(self) -> dict[str, int]:
        """The nodes the cluster has now: host -> Dask threads of that host."""
        return dict(self._threads)

    def workers_of(self, host: str) -> list[str]:
        """Addresses of the Dask workers on ``host`` now."""
        return list(self._workers.get(host, ()))

    def is_connected(self, host: str) -> bool:
        return host in self._workers and not self._closed

    async def _refresh(self) -> None:
        info = await self.client.scheduler.identity(n_workers=-1)
        workers: dict[str, list[str]] = {}
        threads: dict[str, int] = {}
        for address, worker in sorted(info.get("workers", {}).items()):
            host = str(worker.get("host") or "")
            if not host:
                continue
            workers.setdefault(host, []).append(address)
            threads[host] = threads.get(host, 0) + int(worker.get("nthreads", 1))
        for host in sorted(set(workers) - set(self._workers)):
            logger.info("node %s joined (%d Dask threads)", host, threads[host])
        for host in sorted(set(self._workers) - set(workers)):
            logger.warning("node %s left: no Dask worker on it any more", host)
            self._status.pop(host, None)
            store = self._stores.pop(host, None)
            if store is not None:
                await store.close()
        self._workers, self._threads = workers, threads
        now = asyncio.get_running_loop().time()
        if now - self._status_at >= STATUS_INTERVAL or set(workers) - set(self._status):
            self._status_at = now
            await self._collect_status()

    async def _collect_status(self) -> None:
        from disco.backends.dask_node import disco_node_status

        addresses = [addrs[0] for addrs in self._workers.values()]
        if not addresses:
            return
        try:
            found = await asyncio.wait_for(
                self.client.run(disco_node_status, workers=addresses, on_error="ignore"),
                RUN_TIMEOUT,
            )
        except (TimeoutError, OSError) as exc:
            logger.debug("node status: %s", exc)
            return
        for host, addrs in self._workers.items():
            status = found.get(addrs[0])
            if status is not None:
                self._status[host] = status

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except Exception as exc:
            logger.debug("Dask scheduler %s: %s", self.scheduler, exc)

    async def _poll(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.poll_interval)
            try:
                await self._refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # scheduler gone for a moment: keep the last view
                logger.warning("Dask scheduler %s: %s", self.scheduler, exc)

    # -- node status -----------------------------------------------------------------------
    async def disk_usage(self, host: str) -> tuple[int, int]:
        """(free KiB, used KiB) of the node's DDFS volumes; (0, 0) if unknown."""
        status = self._status.get(host)
        if status is None:
            return (0, 0)
        return (int(status["diskfree"]), int(status["diskused"]))

    async def data_disk(self, host: str) -> tuple[str, int]:
        """(mount point, free bytes) of the disk of the node's DISCO_DATA."""
        status = self._status.get(host)
        if status is None:
            return ("", 0)
        mount, free = status["data_disk"]
        return (str(mount), int(free))

    def ddfs_node(self, host: str) -> HttpNodeStore | None:
        """The DDFS storage of a node over HTTP (``HttpNodeStore`` on the node's upload
        server), ``None`` while it is down."""
        if host not in self._workers or self._closed or self.put_port is None:
            return None
        store = self._stores.get(host)
        if store is None:
            url = "http://%s:%d" % (host, self.put_port)
            store = self._stores[host] = HttpNodeStore(host, url, self.auth)
        return store

    # -- tasks -----------------------------------------------------------------------------
    async def run_task(self, spec: TaskSpec, channel: TaskChannel) -> TaskResult:
        """Run one attempt on a Dask worker of ``spec.host``; cancelling kills it."""
        from disco.backends.dask_node import run_disco_task

        workers = self.workers_of(spec.host)
        if self.client is None or self._closed or not workers:
            return TaskFailed("error", "Node %s unavailable: no Dask worker on it" % spec.host)
        key = "disco-%s-%s" % (attempt_key(spec), uuid.uuid4().hex[:8])
        future = self.client.submit(
            run_disco_task,
            spec,
            key=key,
            workers=workers,
            allow_other_workers=False,
            pure=False,
        )
        waiter = asyncio.ensure_future(self._result(future, spec.host))
        try:
            while True:
                done, _ = await asyncio.wait({waiter}, timeout=self.poll_interval)
                if done:
                    break
                if spec.host not in self._workers:
                    waiter.cancel()
                    await asyncio.gather(waiter, return_exceptions=True)
                    await future.cancel()
                    return TaskFailed(
                        "error", "Node %s lost: no Dask worker left on it" % spec.host
                    )
            result = waiter.result()
            if isinstance(result, TaskFailed) and " lost" in result.message:
                await self._refresh_quietly()  # the runtime checks the node set at once
            return result
        except asyncio.CancelledError:
            waiter.cancel()
            await asyncio.gather(waiter, return_exceptions=True)
            await self._kill(spec, future)
            raise
        finally:
            future.release()

    async def _result(self, future: Any, host: str) -> TaskResult:
        try:
            result = await future
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            name = type(exc).__name__
            if name == "KilledWorker":
                text = "Node %s lost: the Dask worker running the task died" % host
            else:
                text = "Node %s: the Dask task failed: %s: %s" % (host, name, exc)
            return TaskFailed("error", text)
        if not isinstance(result, (TaskDone, TaskFailed)):
            return TaskFailed("error", "the Dask task returned %r" % (result,))
        return result

    async def _kill(self, spec: TaskSpec, future: Any) -> None:
        """Stop the attempt: cancel the Dask task (not started yet), kill the worker
        process where it runs and wait until it is gone."""
        from disco.backends.dask_node import kill_disco_attempt

        try:
            await future.cancel()
        except Exception as exc:
            logger.debug("cancel %s: %s", future.key, exc)
        workers = self.workers_of(spec.host)
        if not workers or self.client is None:
            return
        try:
            await asyncio.wait_for(
                self.client.run(
                    kill_disco_attempt, attempt_key(spec), workers=workers, on_error="ignore"
                ),
                RUN_TIMEOUT,
            )
        except (TimeoutError, OSError) as exc:
            logger.warning("killing %s on %s: %s", attempt_key(spec), spec.host, exc)

    async def remove_job_data(self, host: str, jobname: str) -> None:
        """Delete the job's data directory on a node (purge / GC)."""
        from disco.backends.dask_node import remove_disco_job_data

        workers = self.workers_of(host)
        if not workers or self.client is None:
            return
        await asyncio.wait_for(
            self.client.run(remove_disco_job_data, jobname, workers=workers[:1], on_error="ignore"),
            RUN_TIMEOUT,
        )

    async def close(self) -> None:
        """Stop polling, stop the node runtimes (the plugin's teardown), disconnect."""
        from disco.backends.dask_node import PLUGIN_NAME

        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        for store in self._stores.values():
            await store.close()
        self._stores.clear()
        if self.client is not None:
            try:
                await asyncio.wait_for(
                    self.client.unregister_worker_plugin(PLUGIN_NAME), RUN_TIMEOUT
                )
            except Exception as exc:
                logger.debug("unregistering the node plugin: %s", exc)
            await self.client.close()
            self.client = None
