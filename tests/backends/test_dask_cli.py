"""``disco start --dask ADDRESS`` and ``DISCO_DASK_SCHEDULER``: a master daemon whose nodes
are the hosts of a real Dask cluster on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from disco.cli.daemon import Master
from disco.cli.disco import main
from disco.core import Disco, result_iterator
from disco.job import Job
from disco.settings import DiscoSettings
from tests.backends import dask_jobs as jobs
from tests.conftest import clean_disco_env, free_port, live_processes, poll_for

pytestmark = [pytest.mark.dask, pytest.mark.timeout(300)]


def connected(disco: Disco) -> set[str]:
    return {h for h, n in disco.nodeinfo().items() if n["connected"]}


@pytest.mark.parametrize("how", ["option", "setting", "settings_file"])
def test_disco_start_on_a_dask_cluster(
    how: str, dask_cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    extra = {"DISCO_DASK_SCHEDULER": dask_cluster.address} if how == "setting" else {}
    if how == "settings_file":  # DISCO_SETTINGS_FILE, as on a machine set up once
        path = tmp_path / "settings.py"
        path.write_text("DISCO_DASK_SCHEDULER = %r\n" % dask_cluster.address)
        extra = {"DISCO_SETTINGS_FILE": str(path)}
    clean_disco_env(monkeypatch, tmp_path, **extra)
    args = ["start", "--dask", dask_cluster.address] if how == "option" else ["start"]
    try:
        assert main(args) == 0
        assert capsys.readouterr().out.endswith(" started\n")
        disco = Disco()
        poll_for(lambda: connected(disco) == {"127.0.0.2", "127.0.0.3"}, 60.0, "the Dask nodes")
        job = Job(name="CliDask").run(
            input=jobs.word_inputs(4),
            map=jobs.slow_word_map,
            reduce=jobs.sum_reduce,
            params={"delay": 0},
        )
        got = {str(k): int(v) for k, v in result_iterator(job.wait(poll_interval=0.1))}
        assert got == jobs.expected_counts(4)
    finally:
        master = Master(DiscoSettings())
        if master.running:
            master.stop()


def session_members(sid: int) -> set[int]:
    """Live processes of the session ``sid`` (the daemon starts a new session)."""
    return {pid for pid, fields in live_processes().items() if int(fields[3]) == sid}


def test_disco_start_with_a_scheduler_that_does_not_answer_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    from disco.cli import daemon

    clean_disco_env(monkeypatch, tmp_path)
    address = "tcp://127.0.0.1:%d" % free_port()  # nothing listens there
    known = set(daemon._children)
    try:
        assert main(["start", "--dask", address]) == 1
    finally:
        master = Master(DiscoSettings())
        if master.running:
            master.stop()
    err = capsys.readouterr().err
    # the master gave up by itself (its connect timeout, before the daemon's deadline),
    # with an error naming the setting and the address
    assert "exited with status 1" in err, err
    assert "DISCO_DASK_SCHEDULER" in err and address in err, err
    # and left nothing behind: no process of its session (its worker zygote) lives on
    (pid,) = set(daemon._children) - known
    poll_for(lambda: not session_members(pid), 30.0, "the failed master's processes to exit")
