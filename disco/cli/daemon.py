"""Master daemon control for ``disco start|stop|restart|status|nodaemon`` (library.md 18.2).

The master itself is ``python -m disco.master --pidfile PATH`` (a foreground server on
``DISCO_MASTER_HOST:DISCO_PORT`` configured from ``DiscoSettings``).  This module only
launches it detached (new session, output appended to ``DISCO_LOG_DIR/<DISCO_NAME>.log``,
pid in ``DISCO_PID_DIR/<DISCO_NAME>.pid``), waits until ``/disco/version`` answers, and
stops it with SIGTERM.
"""

from __future__ import annotations

import logging
import os
import pwd
import signal
import subprocess
import sys
import time
from typing import Any

from disco.error import DiscoError
from disco.settings import DiscoSettings, dask_scheduler

logger = logging.getLogger(__name__)

START_TIMEOUT = 30.0
# More for a master on a Dask cluster: distributed's imports and the connection to the
# scheduler (disco.backends.dask.CONNECT_TIMEOUT), so a scheduler that does not answer
# ends as the master's own error naming DISCO_DASK_SCHEDULER, not as "no answer".
DASK_START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

# Masters started by this process: kept so they are reaped (no zombies, no
# "still running" warnings) if this process outlives them, e.g. in tests.
_children: dict[int, subprocess.Popen[bytes]] = {}


class Master:
    """The master daemon configured by ``settings``."""

    def __init__(self, settings: DiscoSettings | None = None) -> None:
        self.settings = settings if settings is not None else DiscoSettings()
        self.host = str(self.settings["DISCO_MASTER_HOST"])
        self.port = int(self.settings["DISCO_PORT"])
        name = str(self.settings["DISCO_NAME"])
        self.pidfile = os.path.join(str(self.settings["DISCO_PID_DIR"]), "%s.pid" % name)
        self.logfile = os.path.join(str(self.settings["DISCO_LOG_DIR"]), "%s.log" % name)

    def __str__(self) -> str:
        return "Master %s:%s" % (self.host, self.port)

    @property
    def url(self) -> str:
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return "http://%s:%d" % (host, self.port)

    @property
    def command(self) -> list[str]:
        return [sys.executable, "-m", "disco.master", "--pidfile", self.pidfile]

    # -- state -----------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        """The pid in the pid file, if there is one."""
        try:
            with open(self.pidfile, encoding="ascii") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    @property
    def running(self) -> bool:
        pid = self.pid
        return pid is not None and _alive(pid)

    def answers(self) -> bool:
        """Whether ``/disco/version`` answers."""
        from disco import httpclient

        version = self.url + "/disco/version"
        try:
            return (
                httpclient.request("GET", version, retry=httpclient.NO_RETRY, timeout=1).status
                == 200
            )
        except Exception:
            return False

    # -- actions ---------------------------------------------------------------------------
    def start(self) -> str:
        """Start the daemon and wait until it answers; returns the status line."""
        if self.running:
            raise DiscoError("%s already started" % self)
        self.settings.ensuredirs()
        for key in ("DISCO_LOG_DIR", "DISCO_PID_DIR"):
            self.settings.safedir(key)
        if os.path.exists(self.pidfile):  # stale
            os.unlink(self.pidfile)
        user = run_as(self.settings)
        if truthy(self.settings["DISCO_ROTATE_LOG"]):
            rotate_log(self.logfile)
        with open(self.logfile, "ab") as log:
            if user is not None:
                self._hand_over(user)
            proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(self.settings["DISCO_ROOT"]),
                start_new_session=True,
                env=_child_env(self.settings, user),
                **_user_args(user),
            )
        _children[proc.pid] = proc
        timeout = DASK_START_TIMEOUT if dask_scheduler(self.settings) else START_TIMEOUT
        deadline = time.monotonic() + timeout
        while not self.answers():
            code = proc.poll()
            if code is not None:
                raise DiscoError(
                    "Failed to start %s: it exited with status %s; see %s%s"
                    % (self, code, self.logfile, _tail(self.logfile))
                )
            if time.monotonic() > deadline:
                _terminate(proc.pid)
                raise DiscoError(
                    "Failed to start %s: no answer at %s after %.0fs; see %s%s"
                    % (self, self.url, timeout, self.logfile, _tail(self.logfile))
                )
            time.sleep(0.05)
        if self.pid != proc.pid:
            with open(self.pidfile, "w", encoding="ascii") as f:
                f.write("%d\n" % proc.pid)
        logger.info("master pid %d, log %s", proc.pid, self.logfile)
        return "%s started" % self

    def _hand_over(self, user: pwd.struct_passwd) -> None:
        """Give ``user`` the folders and files the master writes (it starts as root)."""
        keys = (*self.settings.must_exist, "DISCO_LOG_DIR", "DISCO_PID_DIR", "DISCO_ROOT")
        for top in sorted({str(self.settings[key]) for key in keys}):
            if os.path.isdir(top):
                _chown_tree(top, user)
        os.chown(self.logfile, user.pw_uid, user.pw_gid)

    def stop(self) -> str:
        """SIGTERM the daemon and wait for it to exit; returns the status line."""
        pid = self.pid
        if pid is not None and _alive(pid):
            _terminate(pid)
        if os.path.exists(self.pidfile):
            os.unlink(self.pidfile)
        return "%s stopped" % self

    def status(self) -> str:
        return "%s %s" % (self, "running" if self.running else "stopped")

    def nodaemon(self) -> int:
        """Run the master in the foreground until it exits; SIGINT/SIGTERM stop it."""
        self.settings.ensuredirs()
        self.settings.safedir("DISCO_PID_DIR")
        user = run_as(self.settings)
        if user is not None:
            self._hand_over(user)
        proc = subprocess.Popen(
            self.command, env=_child_env(self.settings, user), **_user_args(user)
        )

        def forward(signum: int, frame: Any) -> None:
            proc.send_signal(signal.SIGTERM)

        previous = signal.signal(signal.SIGTERM, forward)
        try:
            while True:
                try:
                    return proc.wait()
                except KeyboardInterrupt:
                    # a terminal's Ctrl-C reached the master too; a lone SIGINT did not
                    proc.send_signal(signal.SIGTERM)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _child_env(settings: DiscoSettings, user: pwd.struct_passwd | None = None) -> dict[str, str]:
    """This environment plus the settings given explicitly to ``settings``; for a master
    that runs as ``user``, that user's ``HOME``, ``USER`` and ``LOGNAME``."""
    env = dict(os.environ)
    for key, value in dict.items(settings):
        env[key] = str(value)
    if user is not None:
        env.update(HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    return env


def _chown_tree(top: str, user: pwd.struct_passwd) -> None:
    os.chown(top, user.pw_uid, user.pw_gid)
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), user.pw_uid, user.pw_gid)


def _user_args(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def truthy(value: Any) -> bool:
    """A yes/no setting: ``''``, ``0``, ``off``, ``no``, ``false`` (any case) are no."""
    return str(value).strip().lower() not in ("", "0", "off", "no", "false", "none")


def _explicit(settings: DiscoSettings, key: str) -> bool:
    """Was ``key`` given (explicitly, in the environment or the settings file) rather
    than left to its default?"""
    if dict.__contains__(settings, key) or key in os.environ:
        return True
    file_settings = getattr(settings, "_file_settings", None)
    return bool(file_settings and key in file_settings())


def run_as(settings: DiscoSettings) -> pwd.struct_passwd | None:
    """The user the master must run as (``DISCO_USER``), or ``None`` for this process's.

    As root, ``disco start`` drops to ``DISCO_USER`` (unless it is root or unset).  Any
    other user cannot switch: an explicit ``DISCO_USER`` naming someone else is refused
    with the reason (its default, ``$LOGNAME``, is ignored).
    """
    name = settings["DISCO_USER"]
    if not name:
        return None
    name = str(name)
    current = pwd.getpwuid(os.geteuid()).pw_name
    if name == current:
        return None
    if os.geteuid() != 0:
        if _explicit(settings, "DISCO_USER"):
            raise DiscoError(
                "DISCO_USER=%s: only root can start the master as another user, and this "
                "is %s; unset DISCO_USER, or run disco start as root" % (name, current)
            )
        return None
    try:
        user = pwd.getpwnam(name)
    except KeyError:
        raise DiscoError("DISCO_USER=%s: there is no such user on this machine" % name)
    _check_can_run(user)
    return user


def _check_can_run(user: pwd.struct_passwd) -> None:
    """Refuse, saying why, when ``user`` cannot run this Python with Disco (e.g. it
    lives under root's home): the master would die before it could log anything."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import disco.master"],
            capture_output=True,
            timeout=60,
            cwd="/",
            env=_child_env(DiscoSettings(), user),
            **_user_args(user),
        )
    except OSError as e:
        reason = e.strerror or str(e)
    else:
        if proc.returncode == 0:
            return
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = lines[-1] if lines else "exit status %d" % proc.returncode
    raise DiscoError(
        "DISCO_USER=%s: that user cannot run %s with Disco (%s); install Disco where "
        "%s can run it, or unset DISCO_USER" % (user.pw_name, sys.executable, reason, user.pw_name)
    )


def rotate_log(path: str, keep: int = 5) -> None:
    """``DISCO_ROTATE_LOG``: move a non-empty log aside before the master starts:
    ``<log>`` becomes ``<log>.1``, ``.1`` becomes ``.2``, ... up to ``keep`` files."""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return
    for i in range(keep - 1, 0, -1):
        older = "%s.%d" % (path, i)
        if os.path.exists(older):
            os.replace(older, "%s.%d" % (path, i + 1))
    os.replace(path, path + ".1")


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) Disco master process."""
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            if f.read().rsplit(b")", 1)[-1].split()[0] == b"Z":
                return False
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"disco.master" in f.read()  # else a stale pid reused by another program
    except (OSError, IndexError):
        return True  # no /proc: trust kill(0)


def _terminate(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if _wait_gone(pid, STOP_TIMEOUT):
        return
    logger.warning("master pid %d ignored SIGTERM for %.0fs: killing it", pid, STOP_TIMEOUT)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    _wait_gone(pid, 5.0)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    _children.pop(pid, None)
    return True


def _tail(path: str, size: int = 2000) -> Any:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - size))
            text = f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return ("\n" + text) if text else ""
