"""Disco settings: ``DiscoSettings`` and its lookup order (library.md section 6).

``settings[key]`` resolves, in order: a value stored in the instance, the environment
variable of that name, a top-level assignment in the settings file, then the default
expression (which may name other settings).  Values from the environment are strings.

Internals of the master and node never read settings themselves: they receive a frozen
config built once from a ``DiscoSettings`` (see ``disco.master.config``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

from disco.error import DiscoError


def job_owner() -> str:
    """``<login>@<hostname>``, the default ``owner`` of jobs."""
    try:
        user = os.getlogin()
    except OSError:
        import getpass

        try:
            user = getpass.getuser()
        except Exception:  # no passwd entry, e.g. in a container
            user = "unknown"
    return "%s@%s" % (user, socket.gethostname())


def guess_erlang() -> str:
    """Kept for compatibility: the original master ran on Erlang."""
    return "erl"


def guess_home() -> str:
    """The Disco home: a source checkout holding ``.disco-home``, else a per-user folder.

    Disco 0.5 raised ``DiscoError`` outside a source tree; a pip-installed package has no
    such tree, so we fall back to ``$XDG_DATA_HOME/disco`` (``~/.local/share/disco``).
    """
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.exists(os.path.join(here, ".disco-home")):
        return here
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(base, "disco")


def guess_settings() -> str:
    """The settings file: ``~/.disco``, else ``/etc/disco/settings.py``, else ``''``."""
    for path in (os.path.join(os.path.expanduser("~"), ".disco"), "/etc/disco/settings.py"):
        if os.path.isfile(path):
            return path
    return ""


# Never pickled with the settings (job packs): the cluster's auth token.
SECRETS = frozenset({"DISCO_AUTH_TOKEN"})


class DiscoSettings(dict):
    """Settings of a Disco client, master or node (a dict with lazy defaults)."""

    defaults: dict[str, str] = {
        "DISCO_HOME": "guess_home()",
        "DISCO_ROOT": "os.path.join(DISCO_HOME, 'root')",
        "DISCO_DATA": "os.path.join(DISCO_ROOT, 'data')",
        "DISCO_MASTER_HOME": "os.path.join(DISCO_HOME, 'master')",
        "DISCO_MASTER_ROOT": "os.path.join(DISCO_DATA, '_%s' % DISCO_NAME)",
        "DISCO_MASTER_CONFIG": "os.path.join(DISCO_ROOT, '%s.config' % DISCO_NAME)",
        # 0.5: socket.gethostname(); the loopback address, so that a master is reachable
        # from other machines only when DISCO_MASTER_HOST says so (docs/security.md).
        "DISCO_MASTER_HOST": "'127.0.0.1'",
        "DISCO_MASTER": "'http://%s:%s' % (DISCO_MASTER_HOST, DISCO_PORT)",
        "DISCO_PORT": "8989",
        "DISCO_NAME": "'disco_%s' % DISCO_PORT",
        "DISCO_LOG_DIR": "os.path.join(DISCO_ROOT, 'log')",
        "DISCO_PID_DIR": "os.path.join(DISCO_ROOT, 'run')",
        "DISCO_WWW_ROOT": "os.path.join(DISCO_MASTER_HOME, 'www')",
        "DISCO_SETTINGS_FILE": "guess_settings()",
        "DISCO_DEBUG": "'off'",
        "DISCO_ERLANG": "guess_erlang()",
        "DISCO_EVENTS": "''",
        "DISCO_FLAGS": "''",
        "DISCO_HTTPD": "'lighttpd -f $DISCO_PROXY_CONFIG'",
        "DISCO_ROTATE_LOG": "False",
        "DISCO_USER": "os.getenv('LOGNAME')",
        "DISCO_JOB_OWNER": "job_owner()",
        "DISCO_WORKER_MAX_MEM": "'80%'",
        "DISCO_ULIMIT": "16000000",
        "DISCO_GC_AFTER": "100 * 365 * 24 * 60 * 60",
        "DATA_GC_INTERVAL": "12",
        "DISCO_PROFILE": "'False'",
        "GRAPHITE_HOST": "'localhost'",
        "SYSTEMD_ENABLED": "False",
        "DISCO_PROXY_ENABLED": "''",
        "DISCO_PROXY": "''",
        "DISCO_PROXY_PORT": "8999",
        "DISCO_PROXY_PID": "os.path.join(DISCO_ROOT, '%s-proxy.pid' % DISCO_NAME)",
        "DISCO_PROXY_CONFIG": "os.path.join(DISCO_ROOT, '%s-proxy.conf' % DISCO_NAME)",
        "DISCO_SCHEDULER": "'fair'",
        # Not in 0.5: the cluster's shared secret and whether reads need it too
        # (disco.auth, docs/security.md).
        "DISCO_AUTH_TOKEN": "''",
        "DISCO_AUTH_READS": "''",
        "DISCO_SCHEDULER_ALPHA": ".001",
        "DISCO_DASK_SCHEDULER": "''",
        "DISCO_TEST_DISCODB": "''",
        "DISCO_TEST_HOST": "socket.gethostname()",
        "DISCO_TEST_PORT": "9444",
        "DISCO_TEST_PROFILE": "''",
        "DISCO_TEST_PURGE": "'purge'",
        "DDFS_ROOT": "os.path.join(DISCO_ROOT, 'ddfs')",
        "DDFS_DATA": "DDFS_ROOT",
        "DDFS_PUT_PORT": "8990",
        "DDFS_PUT_MAX": "3",
        "DDFS_GET_MAX": "3",
        "DDFS_READ_TOKEN": "None",
        "DDFS_WRITE_TOKEN": "None",
        "DDFS_TAG_MIN_REPLICAS": "1",
        "DDFS_TAG_REPLICAS": "1",
        "DDFS_BLOB_REPLICAS": "1",
        "DDFS_PARANOID_DELETE": "''",
        "DDFS_GC_INITIAL_WAIT": "''",
        "DDFS_GC_BALANCE_THRESHOLD": "0.1",
        "DDFS_SPACE_AWARE": "''",
        "DDFS_ABSOLUTE_SPACE": "''",
        # Not in 0.5 (fixed constants there, ddfs.md 6): seconds, so tests run GC fast.
        "DDFS_GC_INTERVAL": "24 * 60 * 60",
        "DDFS_ORPHAN_BLOB_EXPIRES": "5 * 24 * 60 * 60",
        "DDFS_ORPHAN_TAG_EXPIRES": "5 * 24 * 60 * 60",
        "DDFS_DELETED_TAG_EXPIRES": "30 * 24 * 60 * 60",
        "DDFS_PARTIAL_EXPIRES": "24 * 60 * 60",
        "DDFS_DELAYED_FLUSH": "1",
        "DDFS_GC_PROGRESS_TIMEOUT": "30 * 60",
        "DDFS_GC_DELETE_PAUSE": "0.1",
        "DDFS_NODES_OVER_HTTP": "''",
    }

    #: What reads each setting and what it is for; ``docs/settings.md`` is generated
    #: from this table and ``defaults`` (``python -m disco.settingsdoc --write``).
    #: Readers: ``master`` (the master process, its DDFS and its local nodes), ``node``
    #: (the node runtime that starts workers), ``worker`` (the task's Python process),
    #: ``client`` (``disco``/``ddfs`` commands, ``disco.core``, ``Job.run``), ``tests``
    #: (``disco.test``); ``-`` means kept for 0.5 settings files only, read by nothing.
    about: dict[str, tuple[str, str]] = {
        "DISCO_HOME": ("client, master", "Disco's home: the source tree or a per-user folder; base of the folders below and of `disco test`'s test folder."),
        "DISCO_ROOT": ("client, master", "Everything a master writes lives under it; `disco start` runs there."),
        "DISCO_DATA": ("master, node, worker", "Job homes and task results, `<DISCO_DATA>/<host>/<hh>/<job>/`."),
        "DISCO_MASTER_HOME": ("-", "0.5's Erlang master folder; only the base of `DISCO_WWW_ROOT`."),
        "DISCO_MASTER_ROOT": ("master", "The master's own state: job packs, event logs, the job database."),
        "DISCO_MASTER_CONFIG": ("master", "The config table file (`[[host, cores], ...]`)."),
        "DISCO_MASTER_HOST": ("master, client", "The address `disco start` and `python -m disco.master` bind (default `127.0.0.1`: loopback only)."),
        "DISCO_MASTER": ("client, worker, master", "The master's URL clients talk to (`disco://host` or `http://host:port`)."),
        "DISCO_PORT": ("master, node, client", "The master's HTTP port; nodes serve their data on it; the port of `disco://` URLs."),
        "DISCO_NAME": ("master", "The master's name: names its state folder, config file, log and pid files."),
        "DISCO_LOG_DIR": ("master", "Where `disco start` writes the master's log."),
        "DISCO_PID_DIR": ("master", "Where `disco start` writes the master's pid file."),
        "DISCO_WWW_ROOT": ("master", "Static files the master serves (the web UI)."),
        "DISCO_SETTINGS_FILE": ("client, master, node", "A Python file of `NAME = value` lines read after the environment."),
        "DISCO_DEBUG": ("master, tests", "`on`: the master (`disco start`, `python -m disco.master`) and `disco.test`'s runner log at DEBUG level; `off`: INFO."),
        "DISCO_AUTH_TOKEN": ("master, node, client, worker", "The cluster's shared secret: requests that change anything carry it in `X-Disco-Auth-Token` (docs/security.md); unset: no check."),
        "DISCO_AUTH_READS": ("master, node", "With a token set, `1` protects reads too (GETs, node data downloads, the web pages); `/disco/version` stays open."),
        "DISCO_ERLANG": ("-", "0.5: the Erlang interpreter."),
        "DISCO_EVENTS": ("client", "Job events `wait()` prints (the `show` default): `''` none, `'json'`, `'nocolor'`, anything else coloured."),
        "DISCO_FLAGS": ("-", "0.5: extra Erlang flags."),
        "DISCO_HTTPD": ("-", "0.5: the proxy's HTTP server command."),
        "DISCO_ROTATE_LOG": ("master", "True: `disco start` moves a non-empty master log to `<log>.1` (`.1` to `.2`, ... 5 kept) first."),
        "DISCO_USER": ("master", "`disco start` run by root starts the master as this user (handing it the master's folders); another user cannot switch, and an explicit DISCO_USER naming someone else is refused."),
        "DISCO_JOB_OWNER": ("client", "The `owner` written into job packs."),
        "DISCO_WORKER_MAX_MEM": ("worker", "Address-space limit of each task: `'N%'` of RAM or a size such as `'512M'`; the submitting client's value travels with the job."),
        "DISCO_ULIMIT": ("-", "0.5: worker ulimit."),
        "DISCO_GC_AFTER": ("master", "Seconds after which a finished job's data is deleted."),
        "DATA_GC_INTERVAL": ("master", "Hours between passes of the job data collector."),
        "DISCO_PROFILE": ("-", "0.5: profile the Erlang master (jobs use `profile=True`)."),
        "GRAPHITE_HOST": ("-", "0.5: Graphite metrics host."),
        "SYSTEMD_ENABLED": ("-", "0.5: start through systemd."),
        "DISCO_PROXY_ENABLED": ("-", "0.5: run the lighttpd proxy."),
        "DISCO_PROXY": ("client", "A front proxy URL every request to the master goes through."),
        "DISCO_PROXY_PORT": ("-", "0.5: the proxy's port."),
        "DISCO_PROXY_PID": ("-", "0.5: the proxy's pid file."),
        "DISCO_PROXY_CONFIG": ("-", "0.5: the proxy's config file."),
        "DISCO_SCHEDULER": ("master", "Job scheduling policy: `fair` or `fifo`."),
        "DISCO_SCHEDULER_ALPHA": ("master", "Fair scheduler's smoothing factor."),
        "DISCO_DASK_SCHEDULER": ("master", "[Not in 0.5] A Dask scheduler address (`tcp://host:8786`): the nodes are the hosts of its `dask worker`s (docs/cluster.md); empty: local nodes."),
        "DISCO_TEST_DISCODB": ("-", "0.5: run the DiscoDB tests."),
        "DISCO_TEST_HOST": ("tests", "Address of the test HTTP server of `disco.test`."),
        "DISCO_TEST_PORT": ("tests", "Port of the test HTTP server of `disco.test`."),
        "DISCO_TEST_PROFILE": ("tests", "Run `disco.test` jobs with `profile=True`."),
        "DISCO_TEST_PURGE": ("tests", "Purge each `disco.test` job after its test."),
        "DDFS_ROOT": ("-", "Only the base of `DDFS_DATA`."),
        "DDFS_DATA": ("master, node, worker", "Blob and tag storage of DDFS (volumes `vol*` below it)."),
        "DDFS_PUT_PORT": ("master, node, worker", "Port of each node's DDFS upload server."),
        "DDFS_PUT_MAX": ("-", "0.5: concurrent uploads per node (here a fixed gate answers 503)."),
        "DDFS_GET_MAX": ("-", "0.5: concurrent downloads per node (here a fixed gate answers 503)."),
        "DDFS_READ_TOKEN": ("client", "Token sent when reading tags (`ddfs -t`, `disco -t`)."),
        "DDFS_WRITE_TOKEN": ("client", "Token sent when writing tags."),
        "DDFS_TAG_MIN_REPLICAS": ("master", "Fewest tag replicas a tag write needs."),
        "DDFS_TAG_REPLICAS": ("master", "Replicas written for each tag."),
        "DDFS_BLOB_REPLICAS": ("master, client, worker", "Copies of each blob (`ddfs push`/`chunk`, saved results); one node makes one copy."),
        "DDFS_PARANOID_DELETE": ("master", "GC moves deleted files aside instead of deleting them."),
        "DDFS_GC_INITIAL_WAIT": ("master", "Minutes before the first DDFS GC run."),
        "DDFS_GC_BALANCE_THRESHOLD": ("master", "Disk use spread above which GC moves blobs."),
        "DDFS_SPACE_AWARE": ("master", "Place new blobs by free space."),
        "DDFS_ABSOLUTE_SPACE": ("master", "Compare free space in bytes instead of ratios."),
        "DDFS_GC_INTERVAL": ("master", "Seconds between DDFS GC runs (a constant in 0.5)."),
        "DDFS_ORPHAN_BLOB_EXPIRES": ("master", "Seconds before GC deletes a blob no tag names."),
        "DDFS_ORPHAN_TAG_EXPIRES": ("master", "Seconds before GC deletes an orphan tag replica."),
        "DDFS_DELETED_TAG_EXPIRES": ("master", "Seconds a deleted tag's name stays reserved."),
        "DDFS_PARTIAL_EXPIRES": ("master", "Seconds before GC deletes a partial upload."),
        "DDFS_DELAYED_FLUSH": ("master", "Seconds delayed tag updates are buffered."),
        "DDFS_GC_PROGRESS_TIMEOUT": ("master", "Seconds without progress after which a GC run is aborted."),
        "DDFS_GC_DELETE_PAUSE": ("master", "Seconds GC waits after each deletion."),
        "DDFS_NODES_OVER_HTTP": ("master", "Local backend: the DDFS master reaches its simulated nodes over HTTP (`/ddfs/node/...` on `DDFS_PUT_PORT`), as it reaches remote nodes, instead of in process."),
    }

    must_exist = (
        "DISCO_DATA",
        "DISCO_ROOT",
        "DISCO_MASTER_HOME",
        "DISCO_MASTER_ROOT",
        "DISCO_LOG_DIR",
        "DISCO_PID_DIR",
        "DDFS_DATA",
    )
    settings_file_var = "DISCO_SETTINGS_FILE"

    def __init__(self, *args: Any, environ: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._environ = os.environ if environ is None else environ
        self._file: dict[str, Any] | None = None

    # -- lookup ------------------------------------------------------------------------
    def _file_settings(self) -> dict[str, Any]:
        if self._file is None:
            self._file = {}
            path = self._lookup_nofile(self.settings_file_var)
            if path:
                if not os.path.isfile(path):
                    raise DiscoError("Settings file %r does not exist" % path)
                scope: dict[str, Any] = {}
                with open(path, encoding="utf-8") as f:
                    exec(compile(f.read(), path, "exec"), scope)  # noqa: S102 - 0.5 format
                self._file = {k: v for k, v in scope.items() if not k.startswith("__")}
        return self._file

    def _lookup_nofile(self, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key in self._environ:
            return self._environ[key]
        return self._default(key)

    def _default(self, key: str) -> Any:
        expr = self.defaults[key]
        code = _COMPILED.get(expr)
        if code is None:
            code = _COMPILED[expr] = compile(expr, "<disco setting>", "eval")
        return eval(code, _EVAL_GLOBALS, _Resolver(self))  # noqa: S307 - constant table

    def __getitem__(self, key: str) -> Any:
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key in self._environ:
            return self._environ[key]
        if key != self.settings_file_var:
            filesettings = self._file_settings()
            if key in filesettings:
                return filesettings[key]
        if key in self.defaults:
            return self._default(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and (
            dict.__contains__(self, key) or key in self.defaults or key in self._environ
        )

    def keys(self) -> list[str]:  # type: ignore[override]
        return sorted(set(self.defaults) | set(dict.keys(self)))

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    # -- helpers -------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        """A copy of the environment plus every setting, stringified."""
        env = dict(os.environ)
        for key in self.keys():
            try:
                env[key] = str(self[key])
            except Exception:  # an unresolvable default must not break the rest
                continue
        return env

    def safedir(self, key: str) -> str:
        path = os.path.realpath(str(self[key]))
        os.makedirs(path, exist_ok=True)
        return path

    def ensuredirs(self) -> None:
        """Create the directories of ``must_exist`` and a default config table."""
        for key in self.must_exist:
            self.safedir(key)
        config = str(self["DISCO_MASTER_CONFIG"])
        if not os.path.exists(config):
            import json

            with open(config, "w", encoding="utf-8") as f:
                json.dump([["localhost", str(os.cpu_count() or 1)]], f)

    def with_values(self, **values: Any) -> DiscoSettings:
        """A copy with ``values`` set explicitly (same environment and settings file)."""
        copy = DiscoSettings(
            {k: dict.__getitem__(self, k) for k in dict.keys(self)}, environ=self._environ
        )
        copy.update(values)
        return copy

    def materialize(self) -> dict[str, Any]:
        """Every setting that resolves, as a plain dict (unresolvable ones are left out).

        Secrets (``SECRETS``) are left out too: a pickled ``DiscoSettings`` travels in job
        packs, which the master keeps and serves (``/disco/ctrl/parameters``).
        """
        out: dict[str, Any] = {}
        for key in self.keys():
            if key in SECRETS:
                continue
            try:
                out[key] = self[key]
            except Exception:
                continue
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        # 0.5 evaluated every default here and could raise; we keep only what resolves.
        return (_rebuild, (self.materialize(),))

    def __repr__(self) -> str:
        return "DiscoSettings(%s)" % dict.__repr__(self)


def _rebuild(values: dict[str, Any]) -> DiscoSettings:
    return DiscoSettings(values)


class _Resolver(dict):
    """Locals mapping for default expressions: names resolve to other settings."""

    def __init__(self, settings: DiscoSettings) -> None:
        super().__init__()
        self._settings = settings

    def __getitem__(self, key: str) -> Any:
        if key in self._settings.defaults or dict.__contains__(self._settings, key):
            return self._settings[key]
        raise KeyError(key)


#: Default expressions compiled once per process: a process resolves them a few hundred
#: times (the master's config, every pickled ``DiscoSettings`` of a job), and compiling
#: the text each time cost about 8 us per lookup.
_COMPILED: dict[str, Any] = {}

_EVAL_GLOBALS: dict[str, Any] = {
    "os": os,
    "socket": socket,
    "guess_home": guess_home,
    "guess_erlang": guess_erlang,
    "guess_settings": guess_settings,
    "job_owner": job_owner,
}


def debug_level(value: Any) -> int:
    """The log level ``DISCO_DEBUG`` asks for: ``logging.DEBUG`` for ``on`` (also ``1``,
    ``yes``, ``true``, ``debug``, ``trace``), ``logging.INFO`` for ``off`` (also ``''``,
    ``0``, ``no``, ``false``); any other value is a ``DiscoError`` that says which work."""
    import logging

    text = str(value if value is not None else "").strip().lower()
    if text in ("", "off", "0", "no", "false", "none"):
        return logging.INFO
    if text in ("on", "1", "yes", "true", "debug", "trace"):
        return logging.DEBUG
    raise DiscoError("DISCO_DEBUG=%r: use 'on' (debug logging) or 'off'" % (value,))


def dask_scheduler(settings: Any) -> str:
    """The Dask scheduler address ``DISCO_DASK_SCHEDULER`` names (its nodes run the
    tasks), ``''`` when the nodes are local."""
    return str(settings["DISCO_DASK_SCHEDULER"] or "").strip()
