"""Embedded mode: a whole Disco master with a local node inside the calling process.

A script, a test or a notebook gets a working master with no daemon to start:

    from disco.embedded import EmbeddedMaster
    with EmbeddedMaster() as master:
        job = Job(master=master.url).run(input=[...], map=fun_map, reduce=fun_reduce)

The master (aiohttp server, coordinator, SQLite store) and the local backend run on an
asyncio loop in a background daemon thread, bound to ``127.0.0.1`` on a free port, with
their data in a temporary directory (or ``root``).  Task workers are still real OS
processes.  While it runs, ``DISCO_MASTER`` and ``DISCO_PORT`` are set in this process's
environment (unless ``export_env=False``) so that ``Disco()``, ``Job()`` and
``result_iterator`` find it without arguments; they are restored on ``stop()``.

``default_master()`` is what the examples use: the configured master if there is one
(``DISCO_MASTER`` set, or a master answering at the default address), otherwise a
process-wide embedded master stopped at interpreter exit.
"""

from __future__ import annotations

from disco.gcpause import age_young_objects, paused

with paused():  # no cyclic collections while the modules below are imported
    import asyncio
    import atexit
    import contextlib
    import gc
    import logging
    import os
    import shutil
    import socket
    import tempfile
    import threading
    import urllib.parse
    from collections.abc import Sequence
    from typing import Any

    from disco import scratch
    from disco.lazy_aiohttp import import_aiohttp_web
    from disco.locality import add_process_node, remove_process_node
    from disco.node.zygote import prestart as prestart_zygote
    from disco.settings import DiscoSettings

logger = logging.getLogger(__name__)

_EXPORTED = ("DISCO_MASTER", "DISCO_PORT", "DISCO_MASTER_HOST")


class EmbeddedMaster:
    """A master plus local node running in a background thread of this process.

    :param root: directory for all data (``DISCO_ROOT``); a temporary one when ``None``
        (removed on ``stop()``).
    :param host: address to bind (loopback by default).
    :param port: port to bind; ``0`` picks a free one.
    :param nodes: config table rows ``[(host, max_workers), ...]``; default: this machine,
        ``max_workers`` = its cores.
    :param settings: extra settings (e.g. ``{"DISCO_SCHEDULER": "fifo"}``).
    :param export_env: export ``DISCO_MASTER``/``DISCO_PORT`` (and ``DISCO_AUTH_TOKEN``
        when ``settings`` sets it) to this process while running.
    :param local_backend: the local backend's class (a ``LocalBackend`` subclass), and
        ``backend_options`` extra arguments for it (``{"remote_channel": True}``).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        nodes: Sequence[tuple[str, int]] | None = None,
        settings: dict[str, Any] | None = None,
        export_env: bool = True,
        retry_delay: float | None = None,
        local_backend: Any = None,
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self._own_root = root is None
        self.root = str(root) if root is not None else ""
        self._data = ""  # DISCO_DATA while serving (disco.locality.add_process_node)
        self.host = host
        self.requested_port = port
        self.nodes = list(nodes) if nodes is not None else None
        self.extra_settings = dict(settings or {})
        self.export_env = export_env
        self.retry_delay = retry_delay
        self.local_backend = local_backend
        self.backend_options = dict(backend_options or {})
        self.server: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> EmbeddedMaster:
        """Start the master and wait until it serves requests."""
        if self.server is not None:
            return self
        if self._own_root:
            self.root = tempfile.mkdtemp(prefix="disco-embedded-")
            # deleted at stop: the node and the workers sync nothing there (disco.scratch)
            scratch.add(self.root)
        os.makedirs(self.root, exist_ok=True)
        settings = DiscoSettings(
            DISCO_HOME=self.root,
            DISCO_ROOT=self.root,
            DISCO_MASTER_HOST=self.host,
            **self.extra_settings,
        )
        # The start allocates tens of thousands of objects (mostly module imports), none
        # of them garbage: the cyclic collector would run about a hundred times for
        # nothing (about 10 ms).  It is switched back on (if it was on) once serving,
        # with those objects in the oldest generation (``disco.gcpause``).
        collecting = gc.isenabled()
        gc.disable()
        try:
            started = self._start(settings)
            age_young_objects()
            return started
        except BaseException:
            if self._own_root:  # a start that failed leaves no temporary directory
                scratch.remove(self.root)
                shutil.rmtree(self.root, ignore_errors=True)
                self.root = ""
            raise
        finally:
            if collecting:
                gc.enable()

    def _start(self, settings: DiscoSettings) -> EmbeddedMaster:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="disco-embedded-master", daemon=True)
        self._thread.start()
        ready.wait()
        # The worker zygote starts first and imports the worker library on the other core
        # while this thread imports the master (the slowest part of the start).  Its
        # start (a fork, then waiting for its exec: 5-10 ms of wall, 2 of CPU) runs on
        # the loop thread while this one already imports.
        starting = asyncio.run_coroutine_threadsafe(prestart_zygote(settings), loop)
        try:
            # aiohttp's client is imported at its first use, not to serve
            # (disco.lazy_aiohttp), and its default SSL contexts load the CA bundle when
            # first used rather than at import (disco.lazy_ca: about 40 ms of CPU)
            import_aiohttp_web()
            from disco.master.server import start_master
        except BaseException:
            with contextlib.suppress(BaseException):
                self._close_zygote(starting.result(60))
            self._stop_loop()
            raise
        try:
            zygote = starting.result(60)
        except BaseException:
            self._stop_loop()
            raise

        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.requested_port,
            "prestart_workers": True,
            "local_backend": self.local_backend,
            "backend_options": self.backend_options,
            # a temporary root is deleted at stop: nothing to sync for a later start
            "durable_store": not self._own_root,
        }
        if self.retry_delay is not None:
            kwargs["retry_delay"] = self.retry_delay
        try:
            kwargs["zygote"] = zygote
            fut = asyncio.run_coroutine_threadsafe(start_master(settings, **kwargs), loop)
            self.server = fut.result(timeout=60)
        except BaseException:
            self._close_zygote(zygote)  # start_master closes it when it fails itself
            self._stop_loop()
            raise
        if self.export_env:
            self._export()
        self._data = str(settings["DISCO_DATA"])
        add_process_node(self._data)  # results read as files (disco.locality)
        if self.nodes is not None:
            self.disco.config = [[h, str(n)] for h, n in self.nodes]
        logger.debug("embedded master at %s (data in %s)", self.url, self.root)
        return self

    def stop(self) -> None:
        """Stop the master, kill running workers and restore the environment."""
        if self.server is not None and self._loop is not None:
            try:
                asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(30)
            finally:
                self.server = None
        self._stop_loop()
        if self._data:
            remove_process_node(self._data)
            self._data = ""
        if self.export_env:
            self._restore()
        if self.root:
            scratch.remove(self.root)
        if self._own_root and self.root:
            shutil.rmtree(self.root, ignore_errors=True)

    def _close_zygote(self, zygote: Any) -> None:
        if zygote is not None and zygote.registry is None and self._loop is not None:
            # not adopted by the node (which closes its own)
            asyncio.run_coroutine_threadsafe(zygote.close(), self._loop).result(30)

    def _stop_loop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)
            self._loop.close()
            self._loop = None
            self._thread = None

    def __enter__(self) -> EmbeddedMaster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- access --------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def disco(self) -> Any:
        """A ``disco.core.Disco`` client for this master (with its auth token, if any)."""
        from disco.core import Disco

        token = self.server.config.auth.token
        return Disco(self.url, settings=DiscoSettings(DISCO_AUTH_TOKEN=token) if token else None)

    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the master's loop thread and return its result (tests)."""
        assert self._loop is not None

        async def run() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def _export(self) -> None:
        values = {
            "DISCO_MASTER": self.url,
            "DISCO_PORT": str(self.port),
            "DISCO_MASTER_HOST": self.host,
        }
        token = self.server.config.auth.token
        if token:  # so that Disco(), DDFS() and the tools of this process pass its check
            values["DISCO_AUTH_TOKEN"] = token
        for key, value in values.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value

    def _restore(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()


_default: EmbeddedMaster | None = None
_default_lock = threading.Lock()


def _answers(url: str) -> bool:
    """Does a master answer at ``url``?  Nothing listening (the usual case for a script
    on the embedded default) is seen from a refused connection, without an HTTP client."""
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((parts.hostname or "localhost", port), timeout=0.3):
            pass
    except (OSError, ValueError):
        return False
    from disco import httpclient

    version = url.rstrip("/") + "/disco/version"
    try:
        return (
            httpclient.request("GET", version, retry=httpclient.NO_RETRY, timeout=0.3).status == 200
        )
    except Exception:
        return False


def default_master() -> str:
    """The master scripts should use: the configured one, else an embedded one.

    ``DISCO_MASTER`` in the environment or the settings file wins; then a master answering
    at the default address (``disco start``); otherwise one process-wide
    ``EmbeddedMaster`` is started (and stopped at exit).
    """
    global _default
    if "DISCO_MASTER" in os.environ:
        return os.environ["DISCO_MASTER"]
    settings = DiscoSettings()
    try:
        filesettings = settings._file_settings()
    except Exception:
        filesettings = {}
    if "DISCO_MASTER" in filesettings:
        return str(filesettings["DISCO_MASTER"])
    configured = str(settings["DISCO_MASTER"])
    if _answers(configured):
        return configured
    with _default_lock:
        if _default is None:
            _default = EmbeddedMaster().start()
            # Stop before the interpreter shuts down thread pools (the master's SQLite
            # calls run in the loop's executor); plain atexit runs too late for that.
            # The thread pool registers its own exit hook on first import; import it first
            # so that ours (run in reverse order) comes before it.
            import concurrent.futures.thread  # noqa: F401

            register = getattr(threading, "_register_atexit", atexit.register)
            register(_stop_default)
        return _default.url


def _stop_default() -> None:
    global _default
    if _default is not None:
        master, _default = _default, None
        # The interpreter is exiting: its temporary data directory (SQLite store, job
        # homes, results: dozens of files) is deleted by a child that outlives it, so the
        # script's exit does not wait for the file system (5 to 30 ms here, more under
        # load).  docs/decisions.md "Exit of a script on the embedded default master"
        root = master.root if master._own_root else ""
        master._own_root = False
        master.stop()
        if root:
            _remove_in_background(root)
        # The interpreter is exiting.  Its last garbage collections walk every object of
        # the master's modules (aiohttp, the master, DDFS): about 40 ms, longer than a tiny
        # job.  Frozen objects are skipped by them; nothing else changes (they are still
        # freed by reference counting as modules are torn down).  docs/decisions.md
        gc.freeze()


def _remove_in_background(path: str) -> None:
    """Delete the directory tree ``path`` in a child process of its own session that
    outlives this one (``rm -rf``, stdio on ``/dev/null`` so that no pipe of ours is held
    open); in this process if it cannot start."""
    devnull = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]
    try:
        os.posix_spawnp(
            "rm", ["rm", "-rf", "--", path], os.environ, file_actions=devnull, setsid=True
        )
    except (OSError, AttributeError):
        shutil.rmtree(path, ignore_errors=True)


__all__ = ["EmbeddedMaster", "default_master"]
