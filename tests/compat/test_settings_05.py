"""0.5 settings that used to be read by nothing (issue 11.12): ``DISCO_DEBUG`` (log level
of the master and of ``disco.test``'s runner), ``DISCO_ROTATE_LOG`` (``disco start``
rotates the master's log), ``DISCO_USER`` (``disco start`` as root drops to that user)."""

from __future__ import annotations

import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import pytest

import disco
from disco.cli.daemon import Master, rotate_log
from disco.cli.disco import main
from disco.error import DiscoError
from disco.settings import DiscoSettings, debug_level
from disco.test import TestCase, TestRunner
from tests.cli.test_daemon import daemon_env  # noqa: F401 - fixture
from tests.conftest import free_port, poll_for


def read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def test_debug_level_values() -> None:
    for value in ("on", "ON", "1", "yes", "true", "debug", "trace"):
        assert debug_level(value) == logging.DEBUG
    for value in ("off", "", None, "0", "no", "False"):
        assert debug_level(value) == logging.INFO
    with pytest.raises(DiscoError, match="DISCO_DEBUG='loud': use 'on'"):
        debug_level("loud")


def test_disco_debug_sets_the_master_log_level(daemon_env, monkeypatch, capsys) -> None:  # noqa: F811
    master = Master(DiscoSettings())
    assert main(["start"]) == 0
    main(["stop"])
    assert " DEBUG " not in read(master.logfile)  # default: off
    monkeypatch.setenv("DISCO_DEBUG", "on")
    assert main(["start"]) == 0
    main(["stop"])
    assert "DEBUG debug logging on (DISCO_DEBUG=on)" in read(master.logfile)
    monkeypatch.setenv("DISCO_DEBUG", "loud")
    assert main(["start"]) == 1
    assert "DISCO_DEBUG='loud': use 'on' (debug logging) or 'off'" in capsys.readouterr().err


def test_disco_debug_sets_the_test_runner_log_level() -> None:
    seen: list[int] = []

    class Probe(TestCase):
        def runTest(self) -> None:
            seen.append(logging.getLogger("disco.worker").getEffectiveLevel())

    before = logging.getLogger("disco").level
    for value in ("on", "off"):
        runner = TestRunner(DiscoSettings(DISCO_DEBUG=value), stream=open(os.devnull, "w"))
        assert runner.run(Probe()).wasSuccessful()
    assert seen == [logging.DEBUG, logging.INFO]
    assert logging.getLogger("disco").level == before  # restored after the run


def test_disco_rotate_log_rotates_the_master_log(daemon_env, monkeypatch) -> None:  # noqa: F811
    master = Master(DiscoSettings())
    assert main(["start"]) == 0 and main(["stop"]) == 0
    first = read(master.logfile)
    assert first
    assert main(["start"]) == 0 and main(["stop"]) == 0  # off: appended
    assert read(master.logfile).startswith(first) and not os.path.exists(master.logfile + ".1")
    appended = read(master.logfile)
    monkeypatch.setenv("DISCO_ROTATE_LOG", "True")
    assert main(["start"]) == 0 and main(["stop"]) == 0
    assert read(master.logfile + ".1") == appended
    assert not read(master.logfile).startswith(first)


def test_rotate_log_keeps_five(tmp_path) -> None:
    log = str(tmp_path / "m.log")
    for i in range(7):
        with open(log, "w") as f:
            f.write("run %d\n" % i)
        rotate_log(log)
    assert [read("%s.%d" % (log, n)) for n in range(1, 6)] == [
        "run %d\n" % i for i in (6, 5, 4, 3, 2)
    ]
    assert not os.path.exists(log) and not os.path.exists(log + ".6")
    rotate_log(log)  # nothing to rotate


@pytest.fixture
def open_root(monkeypatch) -> Any:
    """Settings under a folder every user can reach (pytest's tmp is root-only)."""
    top = tempfile.mkdtemp(prefix="disco-user-")
    os.chmod(top, 0o755)
    for key in list(os.environ):
        if key.startswith(("DISCO_", "DDFS_")):
            monkeypatch.delenv(key)
    env = {
        "DISCO_HOME": os.path.join(top, "home"),
        "DISCO_ROOT": os.path.join(top, "root"),
        "DISCO_MASTER_HOST": "127.0.0.1",
        "DISCO_PORT": str(free_port()),
        "DISCO_SETTINGS_FILE": "",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield top
    master = Master(DiscoSettings())
    if master.running:
        master.stop()
    shutil.rmtree(top, ignore_errors=True)


def uid_of(pid: int) -> int:
    for line in read("/proc/%d/status" % pid).splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def nobody_can_run_disco() -> bool:
    return _runs_as_nobody([sys.executable, "-c", "import disco.master"])


def test_disco_user_naming_someone_else_is_refused_for_non_root(
    open_root, monkeypatch, capsys
) -> None:
    """A user other than root cannot switch: an explicit DISCO_USER naming another user
    is refused, saying why.  Run as ``nobody`` when the tests run as root and nobody can
    run Disco; otherwise this process is told it is not root (``os.geteuid``)."""
    if os.geteuid() == 0 and nobody_can_run_disco():
        nobody = pwd.getpwnam("nobody")
        env = dict(os.environ, DISCO_USER="root", HOME="/")
        proc = subprocess.run(
            [sys.executable, "-m", "disco.cli.disco", "start"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
        )
        code, err, other, me = proc.returncode, proc.stderr, "root", "nobody"
    else:
        if os.geteuid() == 0:
            monkeypatch.setattr(os, "geteuid", lambda: pwd.getpwnam("nobody").pw_uid)
        me = pwd.getpwuid(os.geteuid()).pw_name
        other = "root"
        monkeypatch.setenv("DISCO_USER", other)
        code, err = main(["start"]), capsys.readouterr().err
    assert code == 1
    assert (
        "DISCO_USER=%s: only root can start the master as another user, and this is %s"
        % (other, me)
        in err
    )
    assert not Master(DiscoSettings()).running


def test_default_disco_user_of_another_name_is_ignored_for_non_root(
    open_root, monkeypatch, capsys
) -> None:
    """DISCO_USER's default ($LOGNAME) naming someone else does not stop a non-root
    user's master (only an explicit setting is refused)."""
    monkeypatch.setenv("LOGNAME", "root")
    monkeypatch.delenv("DISCO_USER", raising=False)
    if os.geteuid() == 0:
        monkeypatch.setattr(os, "geteuid", lambda: pwd.getpwnam("nobody").pw_uid)
    from disco.cli.daemon import run_as

    assert run_as(DiscoSettings()) is None


def test_unknown_disco_user_is_refused_by_root(open_root, monkeypatch, capsys) -> None:
    if os.geteuid() != 0:
        pytest.skip("only root switches users")
    monkeypatch.setenv("DISCO_USER", "no-such-user-here")
    assert main(["start"]) == 1
    assert "DISCO_USER=no-such-user-here: there is no such user" in capsys.readouterr().err


# -- A Python environment that the user ``nobody`` can run ------------------------------
#
# The interpreter of the test venv may live where other users cannot read it (pyenv under
# /root here), which would only ever exercise the refusal branch of DISCO_USER.  These
# helpers build, in a world-readable temporary folder, a venv of a system Python 3.11 with
# copies of the ``disco`` package and of the third-party modules the master imports, so
# the real drop to ``nobody`` is tested wherever the suite runs as root.

_SYSTEM_PYTHONS = ("/usr/bin/python3.11", "/usr/local/bin/python3.11", "/usr/bin/python3")


def _runs_as_nobody(argv: list[str]) -> bool:
    nobody = pwd.getpwnam("nobody")
    try:
        proc = subprocess.run(
            argv,
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            cwd="/",
            capture_output=True,
            timeout=60,
        )
    except OSError:
        return False
    return proc.returncode == 0


def _modules_the_master_imports() -> list[str]:
    """Files of every module ``disco start`` and the master import (run in a child)."""
    code = (
        "import json, sys\n"
        "import disco.cli.disco, disco.master, disco.master.server\n"
        "import http.client\n"  # imported by disco.httpclient's first request (the health check)
        "print(json.dumps([getattr(m, '__file__', None) or '' for m in list(sys.modules.values())]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [f for f in json.loads(out.stdout) if f]


def build_python_for_nobody(top: str) -> str:
    """A venv under ``top`` (world-readable) whose python nobody can run and which
    imports this checkout's ``disco``; returns its interpreter's path."""
    base = next(
        (p for p in _SYSTEM_PYTHONS if os.path.exists(p) and _runs_as_nobody([p, "-c", "pass"])),
        None,
    )
    assert base, "no system Python that the user nobody can run (looked at %s)" % (_SYSTEM_PYTHONS,)
    venv = os.path.join(top, "py")
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True)
    lib = os.path.join(top, "lib")
    os.makedirs(lib)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(disco.__file__)))
    no_cache = shutil.ignore_patterns("__pycache__")
    shutil.copytree(os.path.join(repo, "disco"), os.path.join(lib, "disco"), ignore=no_cache)
    sites = [s for s in sys.path if s.endswith("site-packages") and os.path.isdir(s)]
    copied: set[str] = set()
    for path in _modules_the_master_imports():
        site = next((s for s in sites if path.startswith(s + os.sep)), None)
        if site is None:
            continue
        first = path[len(site) + 1 :].split(os.sep)[0]
        if first in copied or first == "disco" or first.endswith(".pth"):
            continue
        copied.add(first)
        src, dst = os.path.join(site, first), os.path.join(lib, first)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=no_cache)
        else:
            shutil.copy2(src, dst)
    (pure_site,) = subprocess.run(
        [
            os.path.join(venv, "bin", "python"),
            "-c",
            "import site; print(site.getsitepackages()[0])",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    with open(os.path.join(pure_site, "disco-under-test.pth"), "w") as f:
        f.write(lib + "\n")
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames:
            os.chmod(os.path.join(dirpath, name), 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, os.stat(p).st_mode | 0o444)
    python = os.path.join(venv, "bin", "python")
    assert _runs_as_nobody([python, "-c", "import disco.master"]), "nobody cannot import disco"
    return python


def run_disco(python: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess:
    return subprocess.run(
        [python, "-m", "disco.cli.disco", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a master as another user")
def test_disco_start_as_root_really_runs_the_master_as_disco_user(open_root, monkeypatch) -> None:
    """Root's ``disco start`` with DISCO_USER=nobody: the master process runs as nobody,
    owns its log and data folder, serves, and ``disco stop`` stops it."""
    nobody = pwd.getpwnam("nobody")
    python = build_python_for_nobody(open_root)
    monkeypatch.setenv("DISCO_USER", "nobody")
    started = run_disco(python, "start")
    assert started.returncode == 0, started.stderr
    master = Master(DiscoSettings())
    try:
        assert master.running
        assert uid_of(master.pid) == nobody.pw_uid
        assert os.stat(master.logfile).st_uid == nobody.pw_uid
        assert os.stat(os.environ["DISCO_ROOT"]).st_uid == nobody.pw_uid
        assert poll_for(master.answers, timeout=60)
    finally:
        stopped = run_disco(python, "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert not master.running


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a master as another user")
def test_disco_start_as_root_refuses_a_disco_user_who_cannot_run_python(
    open_root, monkeypatch
) -> None:
    """Where DISCO_USER cannot run the interpreter (it lives in a folder only root can
    enter), ``disco start`` refuses, saying why, and starts nothing."""
    private = os.path.join(open_root, "private")
    os.makedirs(private)
    python = build_python_for_nobody(private)
    os.chmod(private, 0o700)
    monkeypatch.setenv("DISCO_USER", "nobody")
    started = run_disco(python, "start")
    assert started.returncode == 1
    assert "DISCO_USER=nobody: that user cannot run %s with Disco" % python in started.stderr
    assert not Master(DiscoSettings()).running
