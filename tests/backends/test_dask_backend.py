"""The Dask backend (issue 9) on a real cluster: a ``dask scheduler`` and ``dask worker``
processes bound to 127.0.0.2 and 127.0.0.3, a real master with
``DISCO_DASK_SCHEDULER``, real Disco worker processes started by the node runtimes the
worker plugin runs inside the Dask workers."""

from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from disco.core import result_iterator
from disco.job import Job
from disco.util import parse_dir
from tests.backends import dask_jobs as jobs
from tests.conftest import child_pids, dask_master, poll_for, start_dask_cluster

pytestmark = [pytest.mark.dask, pytest.mark.timeout(300)]


def assignments(master: Any, name: str) -> list[tuple[str, str]]:
    """``[(task, host)]`` from the ``<stage>:<id> assigned to <host>`` events (4.4)."""
    found = []
    for _, (_, _, message) in master.disco.events(name):
        match = re.fullmatch(r"(\S+) assigned to (\S+)", message)
        if match:
            found.append((match.group(1), match.group(2)))
    return found


def word_count(master: Any, name: str, n: int, delay: float = 0.2) -> Job:
    return Job(name=name, master=master.url).run(
        input=jobs.word_inputs(n),
        map=jobs.slow_word_map,
        reduce=jobs.sum_reduce,
        partitions=2,
        params={"delay": delay},
    )


def counts_of(results: list[Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in result_iterator(results)}


@pytest.fixture
def own_cluster(tmp_path: Path) -> Any:
    """A cluster of this test alone (it kills or adds workers)."""
    cluster = start_dask_cluster(tmp_path / "dask")
    yield cluster
    cluster.stop()


def test_nodes_are_the_hosts_of_the_dask_workers(on_dask: Any, dask_cluster: Any) -> None:
    info = on_dask.disco.nodeinfo()
    assert {"127.0.0.2", "127.0.0.3"} <= set(info)
    assert info["127.0.0.2"]["connected"] and info["127.0.0.3"]["connected"]
    # max_workers defaults to the Dask threads of the host: 2 workers x 2 threads, 1 x 2
    assert info["127.0.0.2"]["max_workers"] == 4
    assert info["127.0.0.3"]["max_workers"] == 2
    # each node serves its data on its own address, on DISCO_PORT
    for host in ("127.0.0.2", "127.0.0.3"):
        url = "http://%s:%d/disco/%s/none" % (host, on_dask.port, host)
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(url, timeout=10)
        assert exc.value.code == 404


def test_word_count_spreads_over_every_node_and_is_exact(on_dask: Any) -> None:
    job = word_count(on_dask, "DaskWords", 12)
    results = job.wait(poll_interval=0.1)
    assert counts_of(results) == jobs.expected_counts(12)
    hosts = {host for _, host in assignments(on_dask, job.name)}
    assert hosts == {"127.0.0.2", "127.0.0.3"}
    # the results stay on the nodes: result_iterator read them from disco:// URLs there
    urls = [url for index in results for url in parse_dir(index)]
    assert urls and all(re.match(r"disco://127\.0\.0\.[23]/", u) for u in urls), urls
    info = job.jobinfo()
    assert info["active"] == "ready"


def test_killing_one_dask_worker_process_mid_job_still_gives_the_exact_answer(
    own_cluster: Any, tmp_path: Path
) -> None:
    master = dask_master(tmp_path / "disco", own_cluster)
    try:
        job = word_count(master, "KillOne", 16, delay=2.0)
        # a Dask worker process of 127.0.0.2 running a Disco task: below it the zygote, the
        # job's warm process and the task's worker (zygote + warm process alone stay after
        # its tasks ended: killing such an idle one would lose no attempt)
        victim = poll_for(
            lambda: next(
                (w for w in own_cluster.workers_on("127.0.0.2") if len(w.descendants()) >= 3),
                None,
            ),
            60.0,
            "a task running in a Dask worker process of 127.0.0.2",
        )
        victim.kill()
        assert counts_of(job.wait(poll_interval=0.1)) == jobs.expected_counts(16)
        # the attempts that ran in the killed process failed as a node failure, and ran
        # again; the host's other Dask worker kept it a node (and serves its data)
        lost = [a for a in job.jobinfo()["failed_attempts"] if "lost" in a["reason"]]
        assert lost and {a["host"] for a in lost} == {"127.0.0.2"}, lost
        assert master.disco.nodeinfo()["127.0.0.2"]["connected"]
    finally:
        master.stop()


def test_killing_every_process_of_a_host_mid_job_still_gives_the_exact_answer(
    own_cluster: Any, tmp_path: Path
) -> None:
    """127.0.0.3 dies once a map task finished there (its output dies with it) while
    others run there: the running ones and the finished one run again elsewhere."""
    master = dask_master(tmp_path / "disco", own_cluster)
    try:
        job = word_count(master, "KillHost", 12, delay=3.0)
        poll_for(
            lambda: any(
                m.startswith("SYS: [map:") and m.endswith("Received results from 127.0.0.3")
                for _, (_, _, m) in master.disco.events(job.name)
            ),
            90.0,
            "a map task to finish on 127.0.0.3",
        )
        for worker in own_cluster.workers_on("127.0.0.3"):
            worker.kill()
        assert counts_of(job.wait(poll_interval=0.1)) == jobs.expected_counts(12)
        poll_for(
            lambda: not master.disco.nodeinfo().get("127.0.0.3", {}).get("connected"),
            30.0,
            "127.0.0.3 to leave the node set",
        )
        events = "\n".join(m for _, (_, _, m) in master.disco.events(job.name))
        assert "outputs were lost with node 127.0.0.3" in events  # the finished one
        assert 'failed on "127.0.0.3": the node was lost' in events  # the running ones
        # every result is on the surviving node
        assert all("127.0.0.3" not in str(r) for r in job.wait())
    finally:
        master.stop()


def test_a_worker_that_joins_mid_job_gets_tasks(tmp_path: Path) -> None:
    cluster = start_dask_cluster(tmp_path / "dask", ["127.0.0.2"])
    try:
        master = dask_master(tmp_path / "disco", cluster)
        try:
            job = word_count(master, "Joiner", 24, delay=1.0)
            poll_for(lambda: assignments(master, job.name), 60.0, "the first task")
            cluster.add_worker("127.0.0.4", nanny=True)  # as `dask worker` runs by default
            assert counts_of(job.wait(poll_interval=0.1)) == jobs.expected_counts(24)
            assert "127.0.0.4" in {h for _, h in assignments(master, job.name)}
        finally:
            master.stop()
    finally:
        cluster.stop()


def test_killing_a_job_kills_its_worker_processes_on_the_nodes(
    on_dask: Any, dask_cluster: Any
) -> None:
    job = word_count(on_dask, "Killed", 6, delay=600.0)

    def running() -> list[int]:
        """The job's task workers: processes below the Dask workers in its job home."""
        found = []
        for worker in dask_cluster.workers:
            for pid in worker.descendants() if worker.alive else ():
                try:
                    if job.name in os.readlink("/proc/%d/cwd" % pid):
                        found.append(pid)
                except OSError:
                    continue
        return found

    poll_for(lambda: len(running()) >= 2, 60.0, "the job's tasks to run on the nodes")
    on_dask.disco.kill(job.name)
    poll_for(lambda: not running(), 60.0, "the killed job's worker processes to exit")
    assert on_dask.disco.jobinfo(job.name)["active"] == "dead"


def test_another_process_of_the_host_takes_over_its_data_when_the_server_dies(
    own_cluster: Any, tmp_path: Path
) -> None:
    master = dask_master(tmp_path / "disco", own_cluster)
    try:
        job = Job(name="Takeover", master=master.url).run(
            input=jobs.word_inputs(8), map=jobs.slow_word_map, params={"delay": 0.5}
        )  # map only: the results are the map outputs, on both nodes
        results = job.wait(poll_interval=0.1)
        urls = [url for index in results for url in parse_dir(index)]
        assert any(u.startswith("disco://127.0.0.2/") for u in urls), urls
        words = sorted(map(str, result_iterator(results)))

        def server() -> Any:
            found = [
                w
                for w in own_cluster.workers_on("127.0.0.2")
                if w.listens_on("127.0.0.2", master.port)
            ]
            return found[0] if len(found) == 1 else None

        poll_for(server, 30.0, "one process of 127.0.0.2 to serve its data").kill()
        survivor = poll_for(server, 30.0, "the other process of 127.0.0.2 to take over")
        assert survivor.alive
        # the outputs of 127.0.0.2 are still read from disco://127.0.0.2/...
        assert sorted(map(str, result_iterator(results))) == words
    finally:
        master.stop()


def test_a_master_whose_scheduler_does_not_answer_fails_naming_the_setting(
    tmp_path: Path,
) -> None:
    from disco.embedded import EmbeddedMaster
    from tests.conftest import free_port

    before = child_pids()
    address = "tcp://127.0.0.1:%d" % free_port()  # nothing listens there
    master = EmbeddedMaster(root=tmp_path / "disco", settings={"DISCO_DASK_SCHEDULER": address})
    with pytest.raises(OSError) as exc:
        master.start()
    assert "DISCO_DASK_SCHEDULER" in str(exc.value) and address in str(exc.value)
    # nothing left behind: its worker zygote is gone
    poll_for(lambda: not (child_pids() - before), 30.0, "the failed master's processes to exit")
    assert master.server is None


def test_an_embedded_master_on_dask_starts_no_worker_process_of_its_own(
    dask_cluster: Any, tmp_path: Path
) -> None:
    # The nodes on the Dask workers start the workers: a worker zygote here would be
    # neither used nor closed (it lived on until garbage collection closed its socket)
    before = child_pids()
    master = dask_master(tmp_path / "disco", dask_cluster)
    try:
        assert child_pids() - before == set()
    finally:
        master.stop()
    assert child_pids() - before == set()


def test_start_master_closes_a_prestarted_zygote_when_tasks_run_on_dask(
    dask_cluster: Any, tmp_path: Path
) -> None:
    import asyncio

    from disco.master.server import start_master
    from disco.node.zygote import prestart
    from disco.settings import DiscoSettings

    root = str(tmp_path / "disco")
    settings = DiscoSettings(
        DISCO_HOME=root, DISCO_ROOT=root, DISCO_DASK_SCHEDULER=dask_cluster.address
    )

    async def run() -> tuple[int | None, bool]:
        zygote = await prestart()
        assert zygote is not None and zygote.alive
        server = await start_master(settings, zygote=zygote)
        try:
            return zygote.pid, zygote.alive
        finally:
            await server.close()

    before = child_pids()
    pid, alive = asyncio.run(run())
    assert pid is not None and not alive
    poll_for(lambda: pid not in child_pids(), 30.0, "the unused zygote to exit")
    assert child_pids() - before == set()
