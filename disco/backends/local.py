"""The local backend: every configured host is a simulated node on this machine.

Only this machine's own names and addresses can be nodes (``disco.backends.hostcheck``):
another host in the config table is never simulated; it stays down, with its reason in
``down_reason`` (and ``save_config_table`` refuses it, see ``check_hosts``).

Owns: running task attempts as local processes (one ``disco.node.attempts.AttemptRunner``
and one zygote for all the simulated hosts: job home + ``run_worker``), one data
server per simulated host that the master does not serve itself (bound on
``(host, DISCO_PORT)``, e.g. 127.0.0.2, master-api.md 2.9), one DDFS upload server per
host on ``(host, DDFS_PUT_PORT)`` (ddfs.md 2.4.2), disk usage, deleting a job's data
directory, and killing whatever still runs at ``close()``.  All nodes share one
DISCO_DATA: each keeps its own ``<DISCO_DATA>/<host>/`` subtree (9.2).  DDFS roots: the
node(s) the master serves use ``DDFS_DATA`` itself, every other simulated host
``<DDFS_DATA>/<host>`` (local-cluster mode of ddfs.md 1.3).  The DDFS master reaches
each node's storage through a ``NodeStore``: in process (``LocalNodeStore``), or with
``ddfs_over_http`` over HTTP to the node's upload server (``HttpNodeStore``), exactly as
it would reach a node on another machine.

Nodes fetch the job pack from the master by URL like any remote node would.  With
``remote_channel=True`` the workers' messages go to the master over HTTP
(``disco.backends.channel.RemoteTaskChannel``) instead of the in-process channel: the
path a node on another machine takes, exercised on one machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import shutil
from collections.abc import Callable, Iterable

from aiohttp import web

from disco.auth import AuthPolicy
from disco.backends.base import TaskChannel, TaskResult, TaskSpec
from disco.backends.channel import RemoteTaskChannel
from disco.backends.hostcheck import refused_hosts
from disco.ddfs.blobserver import create_put_app
from disco.ddfs.node import DDFSNode
from disco.ddfs.nodehttp import HttpNodeStore
from disco.ddfs.nodestore import LocalNodeStore, NodeStore
from disco.node.attempts import AttemptRunner
from disco.node.dataserver import ServedBytes
from disco.node.diskspace import disk_of
from disco.node.jobhome import ensure_jobhome, remove_job_data
from disco.node.orphans import WorkerRegistry
from disco.node.runner import WorkerLimits
from disco.node.serving import node_data_app, serve_first
from disco.node.zygote import Zygote, ZygoteHolder

logger = logging.getLogger(__name__)


class LocalBackend:
    """``Backend`` whose nodes are processes on this machine (see ``disco.backends.base``)."""

    def __init__(
        self,
        *,
        disco_data: str,
        ddfs_data: str,
        disco_port: int,
        served_by_master: Iterable[str] = frozenset(),
        own_names: Iterable[str] | None = None,
        limits: WorkerLimits | None = None,
        use_zygote: bool = True,
        prestart_zygote: bool = False,
        zygote: Zygote | None = None,
        put_port: int | None = None,
        bind_host: str = "127.0.0.1",
        auth: AuthPolicy | None = None,
        remote_channel: bool = False,
        ddfs_over_http: bool = False,
    ) -> None:
        self.disco_data = disco_data
        self.ddfs_data = ddfs_data
        self.disco_port = disco_port
        self.served_by_master = frozenset(served_by_master)
        # names of the master's own node (DDFS root DDFS_DATA); default: the served ones
        self.own_names = self.served_by_master | frozenset(own_names or ())
        self.remote_channel = remote_channel  # talk to the master over HTTP, as remote nodes
        self._hosts: set[str] = set()
        self._refused: dict[str, str] = {}  # configured hosts that are not this machine
        self._servers: dict[str, web.AppRunner] = {}
        self.put_port = put_port  # None: no DDFS upload servers
        self.bind_host = bind_host  # the master's address, for the nodes it serves
        self.auth = auth or AuthPolicy()  # what the nodes' data and upload servers demand
        self._ddfs: dict[str, DDFSNode] = {}
        self._put_servers: dict[str, web.AppRunner] = {}
        self._put_addrs: dict[str, str] = {}  # the address each upload server is bound on
        # what DDFS_NODES_OVER_HTTP asks: the DDFS master uses the nodes' HTTP routes
        self.ddfs_over_http = ddfs_over_http and put_port is not None
        self._stores: dict[str, NodeStore] = {}
        self.served: dict[str, ServedBytes] = {}  # bytes sent by each node's data server
        self._closed = False
        self.away: set[str] = set()  # fault injection: hosts that look disconnected
        # Worker sessions of this master; those of a dead master are killed at start.
        self.registry = WorkerRegistry(os.path.join(disco_data, ".disco-workers"))
        # Python workers are forked from a pre-started interpreter (disco.node.zygote),
        # one for all the simulated hosts; ``zygote``: started before the master
        # (disco.node.zygote.prestart).
        zygotes = ZygoteHolder(self.registry, enabled=use_zygote, adopt=zygote)
        self._prestart_zygote = prestart_zygote
        # Where the master of this process keeps a job's pack (set by the master that
        # built this backend): the job home copies that file instead of downloading it
        # from the master's HTTP server (no request, no aiohttp client to import).
        self.master_jobpacks: Callable[[str], str] | None = None
        self.runner = AttemptRunner(
            self.registry,
            zygotes,
            limits=limits,
            timed_start=True,
            closed_text="Node %s unavailable",
            ensure=self._ensure_jobhome,
        )

    @property
    def limits(self) -> WorkerLimits:
        """The limits of the workers (``disco.node.runner.WorkerLimits``)."""
        return self.runner.limits

    @limits.setter
    def limits(self, limits: WorkerLimits) -> None:
        self.runner.limits = limits

    @property
    def use_zygote(self) -> bool:
        """Are Python workers forked from a zygote (false once one could not start)?"""
        return self.runner.zygotes.enabled

    @use_zygote.setter
    def use_zygote(self, use: bool) -> None:
        self.runner.zygotes.enabled = use

    # -- nodes -------------------------------------------------------------------------
    async def start(self, hosts: list[str]) -> None:
        await asyncio.to_thread(self.registry.reap)  # workers a crashed master left
        await self.set_hosts(hosts)
        if self._prestart_zygote:
            # Runs beside the rest of start-up; the first task finds the zygote ready.
            self.runner.zygotes.prestart()

    async def check_hosts(self, hosts: list[str]) -> dict[str, str]:
        """``{host: reason}`` for the hosts this backend cannot run (not this machine)."""
        return await refused_hosts(hosts)

    def down_reason(self, host: str) -> str | None:
        """Why a configured host is down, when the backend knows (``nodeinfo``)."""
        return self._refused.get(host)

    async def set_hosts(self, hosts: list[str]) -> None:
        self._refused = await refused_hosts(sorted(set(hosts)))
        for host, reason in sorted(self._refused.items()):
            logger.warning("node %s is down: %s", host, reason)
        wanted = set(hosts) - set(self._refused)
        for host in sorted(self._hosts - wanted):
            self._hosts.discard(host)
            self._ddfs.pop(host, None)
            self._put_addrs.pop(host, None)
            store = self._stores.pop(host, None)
            if isinstance(store, HttpNodeStore):
                await store.close()
            for servers in (self._servers, self._put_servers):
                runner = servers.pop(host, None)
                if runner is not None:
                    await runner.cleanup()
        added = sorted(wanted - self._hosts)
        for host in added:  # no await here: DDFS never sees a configured host without node
            self._hosts.add(host)
            self._ddfs[host] = DDFSNode(host, self.ddfs_root(host))
        for host in added:
            if host not in self.served_by_master:
                await self.start_data_server(host)
            await self.start_put_server(host)

    async def start_put_server(self, host: str) -> None:
        """Serve the DDFS upload server (and its ``/ddfs/node/`` routes) of a node on
        ``(host, DDFS_PUT_PORT)`` (ddfs.md 2.4.2)."""
        node = self._ddfs.get(host)
        if self.put_port is None or node is None or host in self._put_servers:
            return
        # upload URLs name the node: bind its own name, else the master's address
        binds = [host, self.bind_host] if host in self.served_by_master else [host]
        app = create_put_app(node, auth=self.auth, disco_port=self.disco_port)
        await self._serve(self._put_servers, host, app, binds, self.put_port, "DDFS put")

    async def stop_put_server(self, host: str) -> bool:
        """Stop the upload server of a simulated host (fault injection: with
        ``ddfs_over_http`` the DDFS master no longer reaches its storage).  ``False`` if it
        had none."""
        runner = self._put_servers.pop(host, None)
        if runner is None:
            return False
        await runner.cleanup()
        return True

    async def _serve(
        self,
        servers: dict[str, web.AppRunner],
        host: str,
        app: web.Application,
        binds: list[str],
        port: int,
        what: str,
    ) -> None:
        """Serve ``app`` on the first address of ``binds`` that can be bound."""

        def refused(bind: str, exc: OSError) -> None:
            # The node still runs tasks; its data is only readable as local files.
            logger.warning("node %s: cannot serve %s on %s:%d: %s", host, what, bind, port, exc)

        try:
            runner, bind = await serve_first(app, binds, port, refused)
        except OSError:
            return
        servers[host] = runner
        if servers is self._put_servers:
            self._put_addrs[host] = bind
        logger.info("node %s: %s server on %s:%d", host, what, bind, port)

    async def start_data_server(self, host: str) -> None:
        """Serve the data of a simulated host on ``(host, DISCO_PORT)`` (2.9)."""
        served = self.served.setdefault(host, ServedBytes())
        app = node_data_app(self.disco_data, self.ddfs_root(host), self.auth, served)
        await self._serve(self._servers, host, app, [host], self.disco_port, "data")

    async def stop_data_server(self, host: str) -> bool:
        """Stop the data server of a simulated host (fault injection: the node's data
        server goes away; its port is free for another).  ``False`` if it had none."""
        runner = self._servers.pop(host, None)
        if runner is None:
            return False
        await runner.cleanup()
        return True

    def ddfs_root(self, host: str) -> str:
        """``DDFS_DATA`` of a node (``<DDFS_DATA>/<host>`` for simulated remote hosts)."""
        if host in self.own_names:
            return self.ddfs_data
        return os.path.join(self.ddfs_data, host)

    def local_ddfs_node(self, host: str) -> DDFSNode | None:
        """The in-process ``DDFSNode`` of a configured node (tests, fault injection)."""
        return self._ddfs.get(host) if not self._closed else None

    def ddfs_node(self, host: str) -> NodeStore | None:
        """The DDFS storage of a configured node as the DDFS master reaches it (``None``
        if it is not configured, or over HTTP when its upload server is not running)."""
        node = self.local_ddfs_node(host)
        if node is None:
            return None
        store = self._stores.get(host)
        if store is None:
            store = self._new_store(host, node)
            if store is None:
                return None
            self._stores[host] = store
        return store

    def _new_store(self, host: str, node: DDFSNode) -> NodeStore | None:
        if not self.ddfs_over_http:
            return LocalNodeStore(
                node,
                peer=self.local_ddfs_node,
                disco_port=self.disco_port,
                auth_token=self.auth.token,
            )
        address = self._put_addrs.get(host)
        if address is None or self.put_port is None:
            return None
        return HttpNodeStore(host, "http://%s:%d" % (address, self.put_port), self.auth)

    def is_connected(self, host: str) -> bool:
        return host in self._hosts and host not in self.away and not self._closed

    def set_away(self, host: str, away: bool) -> None:
        """Fault injection (tests): the host looks disconnected (``is_connected`` false)
        until it is back; the master's once-a-second poll sees it as lost, then back."""
        if away:
            self.away.add(host)
        else:
            self.away.discard(host)

    def node_set(self) -> dict[str, int] | None:
        """``None``: the config table decides which hosts are nodes."""
        return None

    async def disk_usage(self, host: str) -> tuple[int, int]:
        """(free KiB, used KiB) of the node's DDFS volumes (else of DISCO_DATA)."""
        node = self._ddfs.get(host)
        if node is not None:
            return node.disk_usage()
        path = os.path.abspath(self.disco_data)
        while not os.path.exists(path) and os.path.dirname(path) != path:
            path = os.path.dirname(path)  # DISCO_DATA may not exist before the first job
        try:
            usage = shutil.disk_usage(path)
        except OSError:
            return (0, 0)
        return (usage.free // 1024, usage.used // 1024)

    async def data_disk(self, host: str) -> tuple[str, int]:
        """(mount point, free bytes) of the disk of DISCO_DATA (shared by every host)."""
        return disk_of(self.disco_data)

    # -- tasks -------------------------------------------------------------------------
    async def _ensure_jobhome(self, spec: TaskSpec) -> str:
        local = None
        if self.master_jobpacks is not None and not self.remote_channel:
            # remote_channel: as remote nodes; named only when the home is not ready
            local = functools.partial(self.master_jobpacks, spec.jobname)
        return await ensure_jobhome(spec, local_jobpack=local)

    async def run_task(self, spec: TaskSpec, channel: TaskChannel) -> TaskResult:
        """Prepare the job home, then run the worker; cancelling kills the worker."""
        ddfs_data = self.ddfs_root(spec.host)
        if spec.ddfs_data != ddfs_data:
            spec = dataclasses.replace(spec, ddfs_data=ddfs_data)
        if self.remote_channel and spec.channel_token and not self._closed:
            async with RemoteTaskChannel(
                spec.master, spec.channel_token, spec.auth_token
            ) as remote:
                return await self.runner.run(spec, remote)
        return await self.runner.run(spec, channel)

    async def remove_job_data(self, host: str, jobname: str) -> None:
        """Delete ``<DISCO_DATA>/<host>/<hh>/<jobname>`` (purge, GC)."""
        await remove_job_data(self.disco_data, host, jobname)

    async def close(self) -> None:
        self._closed = True
        await self.runner.close()  # kills the attempts, stops the zygote
        for servers in (self._servers, self._put_servers):
            for runner in servers.values():
                await runner.cleanup()
            servers.clear()
        for store in self._stores.values():
            if isinstance(store, HttpNodeStore):
                await store.close()
        self._stores.clear()
