"""Composition root of the master: socket, config, store, backend, runtime, HTTP app.

``start_master`` binds the socket first (port 0 allowed), builds the ``MasterConfig``
with the real port, then the store, the backend (``DaskBackend`` when
``DISCO_DASK_SCHEDULER`` is set, else ``LocalBackend``), the
runtime and the aiohttp app, and serves with ``AppRunner`` + ``SockSite`` on the
running loop (embedded mode and tests).  ``python -m disco.master`` runs it in the
foreground (``__main__.py``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs, web

from disco import auth
from disco.backends.base import Backend
from disco.ddfs import api as ddfs_api
from disco.ddfs.cluster import RuntimeView
from disco.ddfs.config import DDFSConfig
from disco.ddfs.master import DDFSMaster
from disco.master.api import ctrl, data, jobs
from disco.master.api.common import RUNTIME
from disco.master.config import MasterConfig, _explicit
from disco.master.errors import error_middleware
from disco.master.jobtags import JobTags
from disco.master.runtime import Runtime
from disco.master.store import Store
from disco.node.dataserver import DOWNLOADS, download_limit
from disco.node.zygote import Zygote
from disco.servererrors import guard
from disco.settings import DiscoSettings, dask_scheduler
from disco.web import METRICS
from disco.web import mount as mount_web_ui

logger = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024 * 1024 + 1  # the job pack limit (11.5); ctrl bodies are checked apart


async def _close_disco_connections(request: web.Request, response: web.StreamResponse) -> None:
    if request.path.startswith(("/disco/", "/ddfs/", "/proxy/")):
        response.force_close()  # 1.2: /disco and /ddfs responses close the connection
        response.headers[hdrs.CONNECTION] = "close"  # and say so (RFC 9112 9.6)


def build_app(
    runtime: Runtime, extra_routes: Iterable[web.AbstractRouteDef] = ()
) -> web.Application:
    """The master's aiohttp application (routes in the 1.1 order).

    ``extra_routes`` (e.g. DDFS's ``/ddfs/...`` handlers) are added before the web UI
    (``disco.web``: ``/metrics`` and the static catch-all, which never matches
    ``/ddfs/...`` anyway).
    """
    middlewares = [auth.middleware(runtime.config.auth), error_middleware]
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY)
    guard(app, middleware=False)  # error_middleware renders crashes; count the 500s
    app[RUNTIME] = runtime
    app[ctrl.BACKGROUND] = set()
    app[DOWNLOADS] = download_limit()
    app.on_response_prepare.append(_close_disco_connections)
    app.add_routes(ctrl.routes)
    app.add_routes(jobs.routes)
    app.add_routes(data.routes)
    app.add_routes(list(extra_routes))
    mount_web_ui(app, runtime)  # catch-all: keep last
    return app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)  # 1.2: at most 128 concurrent connections
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _put_port(settings: DiscoSettings, host: str, port: int) -> int:
    """DDFS_PUT_PORT, or a free port when neither it nor the master's port was given."""
    if port == 0 and not _explicit(settings, "DDFS_PUT_PORT"):
        return _free_port(host)
    return int(settings["DDFS_PUT_PORT"])


WILDCARDS = ("0.0.0.0", "::", "")


def _own_names(host: str) -> set[str]:
    """Names of this machine's own node: its DDFS root is ``DDFS_DATA`` itself."""
    names = {host, "localhost"}
    if host.startswith("127.") or host in WILDCARDS:
        names.add("127.0.0.1")
    if host in (*WILDCARDS, socket.gethostname()):
        names.add(socket.gethostname())
    return names


def _addresses(name: str) -> set[str]:
    try:
        return {
            str(info[4][0]) for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        }
    except (OSError, UnicodeError):
        return set()


def _served_by_master(host: str) -> set[str]:
    """Node names whose data the master's own server answers for (2.9): the names of
    this machine that lead to the address it listens on, so ``disco://<name>/...``
    URLs reach it (any other configured name gets a data server of its own)."""
    candidates = _own_names(host)
    if host in WILDCARDS:
        return candidates
    candidates.add(socket.gethostname())
    bound = _addresses(host)
    return {host} | {name for name in candidates if _addresses(name) & bound}


PURGE_GRACE = 10.0  # seconds a stopping master waits for purges to delete their data


@dataclass
class MasterServer:
    """A running master: ``url``, ``port``, ``config``, ``runtime``; ``await close()``."""

    config: MasterConfig
    runtime: Runtime
    store: Store
    backend: Backend
    runner: web.AppRunner
    ddfs: DDFSMaster

    @property
    def port(self) -> int:
        return self.config.port

    @property
    def url(self) -> str:
        return "http://%s:%d" % (self.config.host, self.config.port)

    async def close(self) -> None:
        """Finish purges in progress (their data deletion, at most ``PURGE_GRACE`` s), kill
        running workers, stop serving, close the backend and the store."""
        try:
            purges = list(self.runner.app[ctrl.BACKGROUND])
            if purges:
                await asyncio.wait(purges, timeout=PURGE_GRACE)
            await self.ddfs.close()
            await self.runtime.close()
            await self.runner.cleanup()
            await self.backend.close()
        finally:
            self.store.close()


async def start_master(
    settings: DiscoSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    backend: Backend | None = None,
    retry_delay: float | None = None,
    prestart_workers: bool = False,
    local_backend: Callable[..., Backend] | None = None,
    backend_options: dict[str, Any] | None = None,
    zygote: Zygote | None = None,
    durable_store: bool = True,
) -> MasterServer:
    """Start a master on ``host:port`` (``port=0``: a free port) on the running loop.

    Without ``backend``, the backend is ``local_backend`` (default ``LocalBackend``, or
    a subclass) built with the master's settings and ``backend_options`` (e.g.
    ``{"remote_channel": True}``).

    ``prestart_workers`` starts the local backend's worker zygote at once instead of at
    the first Python task (embedded mode: a job always follows, so start it in parallel).
    ``zygote``: one already started (``disco.node.zygote.prestart``, called before this
    module is imported), which the local backend adopts; closed here if unused.
    ``durable_store=False``: the master's data is deleted when it stops (an embedded
    master in a temporary directory), its SQLite store syncs nothing (``Store``).
    """
    try:
        return await _start_master(
            settings,
            host,
            port,
            backend,
            retry_delay,
            prestart_workers,
            local_backend,
            backend_options,
            zygote,
            durable_store,
        )
    except BaseException:
        if zygote is not None and zygote.registry is None:
            await zygote.close()  # not adopted by a local backend (which closes its own)
        raise


async def _start_master(
    settings: DiscoSettings,
    host: str,
    port: int,
    backend: Backend | None,
    retry_delay: float | None,
    prestart_workers: bool,
    local_backend: Callable[..., Backend] | None,
    backend_options: dict[str, Any] | None,
    zygote: Zygote | None,
    durable_store: bool,
) -> MasterServer:
    if backend is not None and zygote is not None:
        await zygote.close()  # another backend starts its own workers
        zygote = None
    sock = _bind(host, port)
    try:
        real_port = sock.getsockname()[1]
        config = MasterConfig.from_settings(
            settings, host=host, port=real_port, retry_delay=retry_delay
        )
        config = dataclasses.replace(config, put_port=_put_port(settings, host, port))
        ddfs_config = DDFSConfig.from_settings(settings, config.put_port)
        for path in (config.master_root, config.disco_data, config.ddfs_data):
            os.makedirs(path, exist_ok=True)
        store = Store(config.master_root, config.config_file, durable=durable_store)
    except BaseException:
        sock.close()
        raise
    scheduler_address = dask_scheduler(settings)
    if backend is None and scheduler_address:
        from disco.backends.dask import DaskBackend

        backend = DaskBackend(
            scheduler_address, disco_port=real_port, put_port=config.put_port, auth=config.auth
        )
    local: Any = None
    if backend is None:
        from disco.backends.local import LocalBackend

        backend = local = (local_backend or LocalBackend)(
            disco_data=config.disco_data,
            ddfs_data=config.ddfs_data,
            disco_port=real_port,
            served_by_master=_served_by_master(host),
            own_names=_own_names(host) | _served_by_master(host),
            prestart_zygote=prestart_workers,
            zygote=zygote,
            put_port=config.put_port,
            bind_host=host,
            auth=config.auth,
            **{"ddfs_over_http": ddfs_config.nodes_over_http, **(backend_options or {})},
        )
    if local is None and zygote is not None:
        # tasks run on another backend's nodes (a Dask cluster), which start their own
        # workers: an unadopted zygote would live on until garbage collection closed it
        await zygote.close()
        zygote = None
    runtime = Runtime(config, store, backend)
    if local is not None and hasattr(local, "master_jobpacks"):
        local.master_jobpacks = runtime.jobpack_path  # its nodes share this process
    ddfs = DDFSMaster(ddfs_config, RuntimeView(runtime), local_root=config.ddfs_data)
    runtime.job_tags = JobTags(ddfs)
    app = build_app(runtime, ddfs_api.routes)
    app[ddfs_api.DDFS] = ddfs
    app[METRICS].ddfs = ddfs
    runner = web.AppRunner(app, handle_signals=False)
    try:
        await runtime.start()
        ddfs.start()
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        await ddfs.close()
        await runtime.close()
        await runner.cleanup()
        await backend.close()
        store.close()
        sock.close()
        raise
    logger.info("Disco master %s listening on %s:%d", config.name, host, real_port)
    if config.auth.enabled:
        logger.info(
            "requests that change something need DISCO_AUTH_TOKEN%s",
            " (reads too)" if config.auth.reads else "",
        )
    return MasterServer(config, runtime, store, backend, runner, ddfs)
