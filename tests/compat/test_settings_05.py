"""0.5 settings that used to be read by nothing (issue 11.12): ``DISCO_DEBUG`` (log level
of the master and of ``disco.test``'s runner), ``DISCO_ROTATE_LOG`` (``disco start``
rotates the master's log), ``DISCO_USER`` (``disco start`` as root drops to that user)."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from disco.cli.daemon import Master, rotate_log
from disco.cli.disco import main
from disco.error import DiscoError
from disco.settings import DiscoSettings, debug_level
from disco.test import TestCase, TestRunner
from tests.cli.test_daemon import daemon_env  # noqa: F401 - fixture
from tests.conftest import free_port


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
    nobody = pwd.getpwnam("nobody")
    try:
        proc = subprocess.run(
            [sys.executable, "-c", "import disco.master"],
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


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can start a master as another user")
def test_disco_start_as_root_drops_to_disco_user(open_root, monkeypatch, capsys) -> None:
    """As root, the master runs as DISCO_USER and owns its folders; where that user
    cannot run this Python (here it may live under /root), start refuses and says so."""
    nobody = pwd.getpwnam("nobody")
    monkeypatch.setenv("DISCO_USER", "nobody")
    master = Master(DiscoSettings())
    if not nobody_can_run_disco():
        assert main(["start"]) == 1
        err = capsys.readouterr().err
        assert "DISCO_USER=nobody: that user cannot run %s with Disco" % sys.executable in err
        assert not master.running
        return
    assert main(["start"]) == 0, capsys.readouterr().err
    try:
        assert uid_of(master.pid) == nobody.pw_uid
        assert os.stat(master.logfile).st_uid == nobody.pw_uid
        assert os.stat(os.environ["DISCO_ROOT"]).st_uid == nobody.pw_uid
        assert master.answers()
    finally:
        assert main(["stop"]) == 0
    assert not master.running


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
