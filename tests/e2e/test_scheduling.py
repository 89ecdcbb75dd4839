"""Scheduling on a real three-node master (master-api.md 10.5): blacklist, locality,
``max_cores``, fifo.  The coordinator's unit tests cover the policies in detail; these
check that they hold with real worker processes."""

from __future__ import annotations

import re
from typing import Any

import pytest

from disco.core import result_iterator
from disco.embedded import EmbeddedMaster
from disco.job import Job
from tests.conftest import poll_for
from tests.e2e import classic_params_funcs as f

pytestmark = pytest.mark.timeout(120)


def assignments(master: Any, name: str) -> dict[str, str]:
    """``{task: host}`` from the ``<stage>:<id> assigned to <host>`` events (4.4)."""
    found = {}
    for _, (_, _, message) in master.disco.events(name):
        match = re.fullmatch(r"(\S+) assigned to (\S+)", message)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def test_no_task_runs_on_a_blacklisted_node(cluster: Any) -> None:
    cluster.disco.blacklist("127.0.0.2")
    cluster.disco.blacklist("127.0.0.3")
    job = Job(name="Black", master=cluster.url).run(
        input=["raw://%d" % i for i in range(6)], map=f.timed_map, partitions=None
    )
    job.wait(poll_interval=0.1)
    hosts = set(assignments(cluster, job.name).values())
    assert hosts == {"localhost"}


def test_map_tasks_run_where_their_input_is(cluster: Any) -> None:
    # a first job leaves one output on each node (raw://<host> inputs are pinned there)
    first = Job(name="Spread", master=cluster.url).run(
        input=["raw://localhost", "raw://127.0.0.2", "raw://127.0.0.3"],
        map=f.timed_map,
        partitions=None,
    )
    first.wait(poll_interval=0.1)
    outputs = cluster.disco.stageresults(first.name, "map")
    hosts_of_outputs = [entry[0].split("/")[2] for entry in outputs]
    assert sorted(hosts_of_outputs) == ["127.0.0.2", "127.0.0.3", "localhost"]
    # a second job reads them: each map task goes to the node holding its input
    second = Job(name="Local", master=cluster.url).run(
        input=outputs, map=f.passing_map, map_reader=None, partitions=None
    )
    second.wait(poll_interval=0.1)
    placed = assignments(cluster, second.name)
    for i, host in enumerate(hosts_of_outputs):
        assert placed["map:%d" % i] == host


def test_max_cores_runs_one_task_at_a_time(cluster: Any) -> None:
    job = Job(name="OneCore", master=cluster.url).run(
        input=["raw://%d" % i for i in range(4)],
        map=f.timed_map,
        partitions=None,
        scheduler={"max_cores": 1},
    )
    spans = sorted(v for _, v in result_iterator(job.wait(poll_interval=0.1)))
    assert len(spans) == 4
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start  # no two map tasks overlapped


@pytest.mark.parametrize("policy", ["fifo", "fair"])
def test_fifo_runs_the_older_job_first_fair_shares(tmp_path: Any, policy: str) -> None:
    """One slot, job A with five tasks then job B with one: fifo finishes every task of
    A before B starts; fair gives B the slot before A's last task."""
    settings = {"DISCO_SCHEDULER": policy}
    with EmbeddedMaster(
        root=tmp_path / "d", nodes=[("localhost", 1)], settings=settings, retry_delay=0.0
    ) as m:
        first = Job(name="A", master=m.url).run(
            input=["raw://a%d" % i for i in range(5)], map=f.timed_map, partitions=None
        )
        second = Job(name="B", master=m.url).run(
            input=["raw://b"], map=f.timed_map, partitions=None
        )
        a = sorted(v for _, v in result_iterator(first.wait(poll_interval=0.1)))
        [(b_start, _)] = [v for _, v in result_iterator(second.wait(poll_interval=0.1))]
    if policy == "fifo":
        assert a[-1][1] <= b_start
    else:
        assert b_start < a[-1][0]


def test_a_slot_goes_to_the_next_task_at_done(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One slot: the second task starts once the first one's worker has sent DONE (and
    been killed: 8.7), while the node still syncs the first one's index file (held here
    until the second has started); the killed worker may still be exiting then (as in
    0.5: docs/decisions.md, "A node's slot is free at DONE"), and is gone afterwards."""
    import os
    import threading
    import time

    from disco.node import outputs

    started: list[int] = []  # taskids, as each attempt's outputs are made
    held: list[bool] = []
    make, close = outputs.TaskOutputs.__init__, outputs.TaskOutputs.close
    lock = threading.Lock()

    def made(self: Any, spec: Any, jobhome: str) -> None:
        make(self, spec, jobhome)
        with lock:
            started.append(spec.taskid)

    def slow_close(self: Any) -> None:
        if self._spec.taskid == 0:  # the first task's sync waits for the second's start
            deadline = time.monotonic() + 20
            while len(started) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            held.append(len(started) == 2)
        close(self)

    monkeypatch.setattr(outputs.TaskOutputs, "__init__", made)
    monkeypatch.setattr(outputs.TaskOutputs, "close", slow_close)
    with EmbeddedMaster(root=tmp_path / "d", nodes=[("localhost", 1)], retry_delay=0.0) as m:
        job = Job(name="Slot", master=m.url).run(
            input=["raw://a", "raw://b"],
            map=f.pid_map,
            partitions=None,
            scheduler={"max_cores": 2},
        )
        pids = dict(result_iterator(job.wait(poll_interval=0.1)))
    assert held == [True]  # the second task started before the first one's sync ended
    assert started[:2] == [0, 1]
    poll_for(lambda: not os.path.exists("/proc/%d" % pids["a"]), 10, "the killed worker to go")
