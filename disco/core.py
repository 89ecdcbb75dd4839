"""``disco.core``: the client handle on a Disco master (library.md section 2).

Owns :class:`Disco` (every master request a script or the ``disco`` command makes,
master-api.md 2.10), the module-level :func:`result_iterator`, :func:`client_version`
and :class:`Stats`.  HTTP is ``disco.comm.download`` over the one connection pool of
``disco.httpclient``, with the client's ``RetryPolicy`` (``retry``); expanding
and reading result URLs is left to ``disco.util``, ``disco.worker`` and
``disco.worker.task_io``.

Scripts do ``from disco.core import Job, Disco, result_iterator``: the 0.5 re-exports
(``Job``, ``func``, ``util``, ``task_io``) are resolved lazily on first access so that
importing ``disco.core`` never drags in (or cycles through) the worker modules.
"""

from __future__ import annotations

from disco.gcpause import paused

with paused():  # no cyclic collections while the modules below are imported
    import importlib
    import json
    import logging
    import marshal
    import os
    import sys
    import time
    from collections.abc import Callable, Iterable, Iterator
    from io import BytesIO
    from typing import Any

    from disco import auth
    from disco.comm import download
    from disco.error import CommError, DataError, DiscoError, JobError, MasterUnreachable
    from disco.eventmonitor import EventMonitor
    from disco.httpclient import RetryPolicy
    from disco.settings import DiscoSettings

logger = logging.getLogger(__name__)

__all__ = [
    "CommError",
    "DataError",
    "Disco",
    "DiscoError",
    "DiscoSettings",
    "EventMonitor",
    "Job",  # noqa: F822 - lazy re-export (module __getattr__)
    "JobError",
    "Stats",
    "client_version",
    "result_iterator",
]

# library.md 1: names 0.5 re-exported from disco.core, imported on first use (PEP 562).
_LAZY = {
    "Job": ("disco.job", "Job"),
    "Params": ("disco.worker", "Params"),
    "func": ("disco.func", None),
    "util": ("disco.util", None),
    "task_io": ("disco.worker.task_io", None),
}

DDFS_MISSING = "DDFS is not available in this version of Disco (needed for %s)"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name]
        with paused():
            mod = importlib.import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError("module 'disco.core' has no attribute %r" % name)


class Continue(Exception):
    """Internal signal of :meth:`Disco.check_results`: the job is still active."""


# -- HTTP --------------------------------------------------------------------------------
def _proxy_url(url: str, proxy: str | None, to_master: bool = True) -> str:
    """``disco.util.proxy_url`` with an explicit proxy (library.md 7.2)."""
    if not proxy:
        return url
    from disco.util import proxy_url

    return proxy_url(url, proxy=proxy, to_master=to_master)


def master_url(master: str, disco_port: Any) -> str:
    """Normalise a master address to ``http://host:port`` (library.md 2.1).

    ``disco://host`` becomes ``http://host:<DISCO_PORT>``; ``http(s)://`` URLs are kept;
    a bare ``host:port`` (or ``host``) is plain HTTP.
    """
    master = str(master).strip().rstrip("/")
    scheme, sep, rest = master.partition("://")
    if not sep:
        scheme, rest = "http", master
    elif scheme == "disco":
        scheme = "http"
        rest = rest.split("/", 1)[0].split(":", 1)[0]
    hostport = rest.split("/", 1)[0]
    if ":" not in hostport and scheme == "http":
        rest = "%s:%s%s" % (hostport, disco_port, rest[len(hostport) :])
    return "%s://%s" % (scheme, rest)


def _jobref(disco: Disco, jobname: str) -> Any:
    """``Job(name=jobname, master=disco)``: the job ``JobError`` and ``EventMonitor`` name."""
    from disco.job import Job

    return Job(name=jobname, master=disco)


def _name_of(job: Any) -> str:
    """A job name from a ``Job``, a name, or a previous ``(name, (status, results))``."""
    if isinstance(job, str):
        return job
    if isinstance(job, (list, tuple)):
        return str(job[0])
    return str(job.name)


# -- the client --------------------------------------------------------------------------
class Disco:
    """The client of one Disco master: query the system, submit and wait for jobs.

    :param master: address of the master, e.g. ``disco://localhost`` or
        ``http://host:8989`` (default: the ``DISCO_MASTER`` setting).
    :param settings: a :class:`disco.settings.DiscoSettings` (default: a new one).
    :param proxy: front proxy URL (default: the ``DISCO_PROXY`` setting).
    :param retry: a ``disco.httpclient.RetryPolicy`` for every request to the master
        (default ``httpclient.DEFAULT_RETRY``).
    """

    def __init__(
        self,
        master: str | None = None,
        settings: DiscoSettings | None = None,
        proxy: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.retry = retry
        self.settings = settings if settings is not None else DiscoSettings()
        self.proxy = proxy if proxy is not None else self.settings["DISCO_PROXY"]
        self.master = master_url(
            master or self.settings["DISCO_MASTER"], self.settings["DISCO_PORT"]
        )

    def __repr__(self) -> str:
        return "Disco master at %s" % self.master

    # -- raw access ----------------------------------------------------------------------
    def request(
        self, url: str, data: bytes | str | None = None, offset: int = 0, as_bytes: bool = False
    ) -> Any:
        """HTTP to ``master + url``: POST when ``data`` is given, else GET (library.md 2.1).

        ``offset`` asks for the bytes from that offset on (``Range``).  Returns text
        (UTF-8) unless ``as_bytes``.  Raises :class:`CommError`; when no HTTP answer came
        at all, :class:`disco.error.MasterUnreachable` (a ``CommError``) whose message
        names the master and says ``(is disco master running at <master>?)``.
        """
        if isinstance(data, str):
            data = data.encode("utf-8")
        full = _proxy_url("%s%s" % (self.master, url), self.proxy)
        method = "GET" if data is None else "POST"
        try:
            headers = auth.headers(self.settings)
            body = download(
                full, method=method, data=data, offset=offset, headers=headers, retry=self.retry
            )
        except CommError as e:
            if e.code is None and not isinstance(e, MasterUnreachable):
                # one short error naming the master, without the chain of the cause
                raise MasterUnreachable(
                    "%s (is disco master running at %s?)" % (e.msg, self.master),
                    e.url,
                    master=self.master,
                ) from None
            raise
        return body if as_bytes else body.decode("utf-8")

    def _json(self, url: str, data: Any = None) -> Any:
        body = None if data is None else json.dumps(data)
        return json.loads(self.request(url, body))

    def submit(self, jobpack: bytes) -> str:
        """POST a job pack to ``/disco/job/new``; returns the job name the master gave."""
        status, body = json.loads(self.request("/disco/job/new", jobpack))
        if status != "ok":
            raise DiscoError("Failed to submit jobpack: %s" % body)
        return body

    # -- cluster -------------------------------------------------------------------------
    def get_config(self) -> list[list[str]]:
        """The config table: ``[[host_spec, max_workers], ...]`` (master-api.md 3.4)."""
        return self._json("/disco/ctrl/load_config_table")

    def set_config(self, config: list[list[Any]]) -> None:
        """Save a new config table; the master must answer ``"table saved!"``."""
        reply = self._json("/disco/ctrl/save_config_table", config)
        if reply != "table saved!":
            raise DiscoError(reply)

    config = property(get_config, set_config)

    def master_version(self) -> str:
        """The master's version string (``GET /disco/version``)."""
        return self._json("/disco/version")

    @property
    def ddfs(self) -> Any:
        """A ``disco.ddfs.DDFS`` client on this master."""
        try:
            from disco.ddfs import DDFS
        except ImportError:
            raise DiscoError(DDFS_MISSING % "DDFS access") from None
        return DDFS(self.master, retry=self.retry)

    def nodeinfo(self) -> dict[str, dict[str, Any]]:
        """Status of every node, keyed by host (master-api.md 3.3)."""
        return self._json("/disco/ctrl/nodeinfo")

    def joblist(self) -> list[list[Any]]:
        """``[[start_seconds, status, jobname], ...]``, newest first."""
        return self._json("/disco/ctrl/joblist")

    def blacklist(self, node: str) -> None:
        """Run no new tasks on ``node``."""
        self._json("/disco/ctrl/blacklist", node)

    def whitelist(self, node: str) -> None:
        """Let the master run tasks on ``node`` again."""
        self._json("/disco/ctrl/whitelist", node)

    # -- out-of-band results (need DDFS) ---------------------------------------------------
    def oob_get(self, jobname: str, key: str) -> bytes | None:
        """The out-of-band value stored under ``key`` by a task of the job."""
        try:
            from disco.util import load_oob
        except ImportError:
            raise DiscoError(DDFS_MISSING % "out-of-band results") from None
        try:
            return load_oob(self.master, jobname, key)
        except CommError as e:
            if e.code == 404:
                raise DiscoError("Unknown key or jobname") from None
            raise

    def oob_list(self, jobname: str) -> list[str]:
        """Every out-of-band key of the job (order not defined)."""
        ddfs = self.ddfs
        tag = "disco:job:oob:%s" % jobname
        urls = ddfs.get(tag)["urls"]
        return list({ddfs.blob_name(replicas[0]) for replicas in urls})

    def profile_stats(self, jobname: str, mode: str = "", stream: Any = None) -> Any:
        """A ``pstats.Stats`` over the job's profile data (``profile=True`` jobs).

        :param mode: ``'map'``, ``'reduce'`` or ``''`` (all).
        :param stream: output stream of the stats (default ``sys.stdout``).
        """
        import pstats

        prefix = "profile-%s" % mode
        keys = [key for key in self.oob_list(jobname) if key.startswith(prefix)]
        if not keys:
            raise JobError(_jobref(self, jobname), "No profile data")
        stats = pstats.Stats(Stats(self.oob_get(jobname, keys[0])), stream=stream or sys.stdout)
        for key in keys[1:]:
            stats.add(Stats(self.oob_get(jobname, key)))
        stats.strip_dirs()
        stats.sort_stats("cumulative")
        return stats

    # -- jobs ------------------------------------------------------------------------------
    def new_job(self, name: str, **jobargs: Any) -> Any:
        """Submit a new job: ``Job(name=name, master=self).run(**jobargs)`` (the job uses
        this client and its settings, e.g. its ``DISCO_AUTH_TOKEN``)."""
        from disco.job import Job

        return Job(name=name, master=self, settings=self.settings).run(**jobargs)

    def kill(self, jobname: str) -> None:
        """Kill the job (it becomes ``dead`` unless it was already ``ready``)."""
        self._json("/disco/ctrl/kill_job", jobname)

    def clean(self, jobname: str) -> None:
        """Delete the job's master metadata (deprecated since 0.4: use :meth:`purge`)."""
        self._json("/disco/ctrl/clean_job", jobname)

    def purge(self, jobname: str) -> None:
        """Delete all metadata and data of the job."""
        self._json("/disco/ctrl/purge_job", jobname)

    def jobpack(self, jobname: str) -> Any:
        """The ``disco.job.JobPack`` submitted for the job."""
        from disco.job import JobPack

        data = self.request("/disco/ctrl/parameters?name=%s" % jobname, as_bytes=True)
        return JobPack.load(BytesIO(data))

    def rawevents(self, jobname: str, offset: int = 0) -> str:
        """The job's raw event lines from byte ``offset`` on (master-api.md 4.3)."""
        return self._rawevents(jobname, offset).decode("utf-8", "replace")

    def _rawevents(self, jobname: str, offset: int) -> bytes:
        try:
            return self.request(
                "/disco/ctrl/rawevents?name=%s" % jobname, offset=offset, as_bytes=True
            )
        except CommError as e:
            if e.code == 416 and offset:  # a strict server: nothing past the end yet
                return b""
            raise

    def events(self, jobname: str, offset: int = 0) -> Iterator[tuple[int, tuple[str, str, str]]]:
        """Iterate ``(next_offset, (timestamp, host, message))`` over the job's events.

        Safe while the job runs: iteration stops at a partial last line; pass the last
        offset back to continue.  Offsets count bytes of the events file.
        """
        return _parse_events(self._rawevents(jobname, offset), offset)

    def stageresults(self, jobname: str, stagename: str) -> list[list[str]]:
        """Outputs of one finished stage, one list of replica URLs per output."""
        return self._json("/disco/ctrl/get_stageresults?name=%s&stage=%s" % (jobname, stagename))

    def results(self, jobspec: Any, timeout: int = 2000) -> Any:
        """Status and results of one job, or of many while waiting for any to finish.

        A ``Job`` or a name gives ``(status, results)``.  A list (of jobs, names, or
        ``(name, (status, results))`` pairs) gives ``(others, active)``: two lists of
        ``(name, (status, results))``.  The master waits at most ``timeout`` ms for one
        active job to finish.  Status: ``'unknown job'``, ``'dead'``, ``'active'``,
        ``'ready'``.
        """
        single = isinstance(jobspec, str) or not isinstance(jobspec, (list, tuple))
        jobs = [jobspec] if single else list(jobspec)
        names = [_name_of(job) for job in jobs]
        reply = self._json("/disco/ctrl/get_results", [max(0, int(timeout)), names])
        if single:
            status, results = reply[0][1]
            return status, results
        others: list[tuple[str, tuple[str, Any]]] = []
        active: list[tuple[str, tuple[str, Any]]] = []
        for name, (status, results) in reply:
            (active if status == "active" else others).append((name, (status, results)))
        return others, active

    def jobinfo(self, jobname: str) -> dict[str, Any]:
        """Information about the job (master-api.md 3.1)."""
        return self._json("/disco/ctrl/jobinfo?name=%s" % jobname)

    def job_error(self, jobname: str, status: str, job: Any = None) -> JobError:
        """The ``JobError`` for a job that ended ``status``: with the master's report of
        its last failure (``jobinfo`` ``last_failure``) when there is one.  ``job`` is
        the error's ``.job`` (default: a ``Job`` named ``jobname``)."""
        job = job if job is not None else _jobref(self, jobname)
        try:
            failure = self.jobinfo(jobname).get("last_failure") if status == "dead" else None
        except (CommError, ValueError, AttributeError):
            failure = None
        if not isinstance(failure, dict) or not isinstance(failure.get("message"), str):
            return JobError(job, "Status %s" % status)
        if failure.get("kind") == "killed":  # 0.5's message, with the kind to tell
            return JobError(job, "Status %s" % status, kind="killed")
        details = {k: v for k, v in failure.items() if k != "message"}
        return JobError(job, failure["message"], **details)

    def check_results(
        self, jobname: str, start_time: float, timeout: float | None, poll_interval: int
    ) -> Any:
        """One poll of :meth:`wait`; ``poll_interval`` in ms.  Raises ``Continue`` while active."""
        try:
            status, results = self.results(jobname, timeout=poll_interval)
        except CommError as e:
            logger.warning("polling %s failed, still waiting: %s", jobname, e)
            status, results = "active", None
            if e.code is None:  # no answer at all: do not spin
                time.sleep(_bounded(poll_interval / 1000.0, start_time, timeout))
        if status == "ready":
            return results
        if status != "active":
            raise self.job_error(jobname, status)
        if timeout and time.time() - start_time > timeout:
            raise JobError(_jobref(self, jobname), "Timeout")
        raise Continue()

    def wait(
        self,
        jobname: str,
        poll_interval: float = 2,
        timeout: float | None = None,
        clean: bool = False,
        show: Any = None,
    ) -> list[Any]:
        """Block until the job has finished; return its results.

        :param poll_interval: seconds between status requests (each is a long poll).
        :param timeout: seconds before giving up with ``JobError(..., "Timeout")``.
        :param clean: call :meth:`clean` once the job has finished (deprecated).
        :param show: console output of job events; default ``DISCO_EVENTS``.
        """
        if show is None:
            show = self.settings["DISCO_EVENTS"]
        monitor = EventMonitor(_jobref(self, jobname), format=show, poll_interval=poll_interval)
        start_time = time.time()
        finished = False
        try:
            while True:
                monitor.poll()
                try:
                    results = self.check_results(
                        jobname, start_time, timeout, int(poll_interval * 1000)
                    )
                except Continue:
                    continue
                except JobError as e:
                    finished = e.message != "Timeout"
                    raise
                finished = True
                return results
        finally:
            if finished:
                monitor.poll()  # show the last events (READY, the error)
            monitor.cleanup()
            # library.md 21.13: clean once, after the job has finished (not per poll).
            if clean and finished:
                self.clean(jobname)

    def result_iterator(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Module :func:`result_iterator` reading through this master (``ddfs`` forced)."""
        kwargs["ddfs"] = self.master
        return result_iterator(*args, **kwargs)


def _bounded(seconds: float, start_time: float, timeout: float | None) -> float:
    if timeout:
        seconds = min(seconds, max(0.0, start_time + timeout - time.time()))
    return max(0.0, seconds)


def _parse_events(data: bytes, offset: int) -> Iterator[tuple[int, tuple[str, str, str]]]:
    """Yield ``(offset_after_line, event)`` per complete line (master-api.md 4.3)."""
    lines = data.split(b"\n")
    for line in lines[:-1]:  # the last piece has no newline yet: partial (or empty)
        if line.strip():
            try:
                event = tuple(json.loads(line.decode("utf-8")))
            except ValueError:
                return
        else:
            event = None
        offset += len(line) + 1
        if event is not None:
            yield offset, event  # type: ignore[misc]


# -- reading results ---------------------------------------------------------------------
_DEFAULT: Any = object()


def result_iterator(
    urls: Iterable[Any],
    reader: Any = _DEFAULT,
    input_stream: Any = _DEFAULT,
    notifier: Callable[[Any], Any] | Any = _DEFAULT,
    params: Any = None,
    ddfs: str | None = None,
) -> Iterator[Any]:
    """Iterate over the records stored at ``urls`` (job results or any inputs).

    :param reader: the last input stream applied (default ``task_io.chain_reader``,
        the internal record format); a falsy value leaves it out.
    :param input_stream: input streams applied first (default
        ``(task_io.task_input_stream,)``, which dispatches on the URL scheme).
    :param notifier: called with each input (a URL or a list of replica URLs) before
        it is opened (default ``disco.func.notifier``).
    :param params: passed to streams that take ``params``.
    :param ddfs: master used to resolve ``tag://`` URLs (default ``DISCO_MASTER``).
    """
    from disco.util import inputlist
    from disco.worker import Input
    from disco.worker.task_io import StreamCombiner, chain_reader, task_input_stream

    if reader is _DEFAULT:
        reader = chain_reader
    if input_stream is _DEFAULT:
        input_stream = (task_input_stream,)
    if notifier is _DEFAULT:
        from disco.func import notifier
    settings = DiscoSettings(DISCO_MASTER=ddfs) if ddfs else DiscoSettings()
    streams = list(input_stream) + ([reader] if reader else [])

    def open_url(url: str) -> Any:
        return StreamCombiner(url, streams, params)

    proxy = settings["DISCO_PROXY"]
    for entry in inputlist(urls, settings=settings):
        if isinstance(entry, (list, tuple)):
            dest: Any = [_proxy_url(url, proxy, to_master=False) for url in entry]
        else:
            dest = _proxy_url(entry, proxy, to_master=False)
        notifier(dest)
        yield from Input(dest, open=open_url)


# -- misc --------------------------------------------------------------------------------
def client_version() -> str:
    """The version of this client library (library.md 2.3).

    The installed distribution's version; else parsed from a ``disco-<ver>*.egg-info``
    next to the package (``"unknown"`` if unparsable); ``"source"`` when neither exists.
    """
    from importlib import metadata

    try:
        for dist in ("disco-mapreduce", "disco"):
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
    except Exception:  # broken metadata must not break the client
        logger.debug("reading package metadata failed", exc_info=True)
    parent = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for entry in sorted(os.listdir(parent)):
        if entry.startswith("disco-") and entry.endswith(".egg-info"):
            version = entry[len("disco-") : -len(".egg-info")].split("-")[0]
            return version or "unknown"
    return "source"


class Stats:
    """Marshal-format profile data in the shape ``pstats.Stats`` accepts."""

    def __init__(self, prof_data: bytes) -> None:
        self.stats = marshal.loads(prof_data)

    def create_stats(self) -> None:
        """Nothing to do: the stats are already loaded."""
