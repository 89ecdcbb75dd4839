"""disco start / status / stop / restart / nodaemon with a real master process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import pytest

from disco.cli.daemon import Master
from disco.cli.disco import main
from disco.core import Disco
from disco.settings import DiscoSettings
from tests.conftest import clean_disco_env, poll_for


@pytest.fixture
def daemon_env(monkeypatch, tmp_path):
    port = clean_disco_env(monkeypatch, tmp_path)
    yield "Master 127.0.0.1:%d" % port
    master = Master(DiscoSettings())
    if master.running:  # a failed test must not leave a daemon behind
        master.stop()


def test_start_status_stop_restart(daemon_env, capsys) -> None:
    assert main(["status"]) == 0
    assert capsys.readouterr().out == "%s stopped\n" % daemon_env

    assert main(["start"]) == 0
    assert capsys.readouterr().out == "%s started\n" % daemon_env
    master = Master(DiscoSettings())
    pid = master.pid
    assert pid and os.path.exists(master.pidfile)
    assert os.path.exists(master.logfile)
    assert master.logfile == os.path.join(
        os.environ["DISCO_ROOT"], "log", "disco_%s.log" % master.port
    )
    assert Disco().master_version()  # DISCO_MASTER defaults to host:port

    assert main(["status"]) == 0
    assert capsys.readouterr().out == "%s running\n" % daemon_env
    assert main(["start"]) == 1
    assert capsys.readouterr().err == "%s already started\n" % daemon_env

    assert main(["restart"]) == 0
    assert capsys.readouterr().out == "%s stopped\n%s started\n" % (daemon_env, daemon_env)
    assert master.pid != pid

    assert main(["stop"]) == 0
    assert capsys.readouterr().out == "%s stopped\n" % daemon_env
    assert not master.running and not os.path.exists(master.pidfile)
    assert main(["stop"]) == 0  # stopping a stopped master is fine
    assert capsys.readouterr().out == "%s stopped\n" % daemon_env


def test_stale_pid_file_counts_as_stopped(daemon_env, capsys) -> None:
    master = Master(DiscoSettings())
    os.makedirs(os.path.dirname(master.pidfile), exist_ok=True)
    with open(master.pidfile, "w") as f:
        f.write("%d\n" % os.getpid())  # alive, but not a master
    assert main(["status"]) == 0
    assert capsys.readouterr().out == "%s stopped\n" % daemon_env


def test_start_failure_is_reported(daemon_env, capsys) -> None:
    with socket.socket() as busy:  # the port is taken: the master cannot bind
        busy.bind(("127.0.0.1", int(os.environ["DISCO_PORT"])))
        busy.listen()
        assert main(["start"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Failed to start %s" % daemon_env)
    assert "see " in err and ".log" in err
    assert not Master(DiscoSettings()).running


def test_nodaemon_runs_in_the_foreground(daemon_env) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "disco.cli.disco", "nodaemon"])
    try:
        master = Master(DiscoSettings())
        poll_for(master.answers, 20, "the foreground master to answer")
        assert master.running
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
