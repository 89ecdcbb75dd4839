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
from tests.conftest import clean_disco_env, poll_for

pytestmark = [pytest.mark.dask, pytest.mark.timeout(300)]


def connected(disco: Disco) -> set[str]:
    return {h for h, n in disco.nodeinfo().items() if n["connected"]}


@pytest.mark.parametrize("how", ["option", "setting"])
def test_disco_start_on_a_dask_cluster(
    how: str, dask_cluster: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    extra = {"DISCO_DASK_SCHEDULER": dask_cluster.address} if how == "setting" else {}
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
