"""A backend with its own node set (issue 9 C, ``Backend.node_set``): the runtime polls
it each second and the nodes, ``nodeinfo`` and scheduling follow it while the master
runs; config-table rows only override the slots of those hosts.

``SetBackend`` is the local backend whose node set the test changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from disco.backends.local import LocalBackend
from disco.core import Disco, result_iterator
from disco.embedded import EmbeddedMaster
from disco.job import Job
from tests.backends.jobfuncs import slow_int_map, sum_reduce
from tests.conftest import child_pids, poll_for

pytestmark = pytest.mark.timeout(180)

NEW = "127.0.0.2"


class SetBackend(LocalBackend):
    """Local nodes, but the backend decides which hosts there are (as Dask does)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.hosts_now: dict[str, int] = {"localhost": 1}

    def node_set(self) -> dict[str, int] | None:
        return dict(self.hosts_now)


@pytest.fixture
def master(tmp_path) -> Iterator[EmbeddedMaster]:
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", local_backend=SetBackend, retry_delay=0.0) as m:
        m.disco.config = []  # no table rows: the backend's slots count
        yield m
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


def set_nodes(master: EmbeddedMaster, nodes: dict[str, int]) -> None:
    backend = master.server.backend

    def change() -> None:
        backend.hosts_now = dict(nodes)

    master.call(change)


def slots(master: EmbeddedMaster) -> dict[str, tuple[int, bool]]:
    return {h: (n["max_workers"], n["connected"]) for h, n in master.disco.nodeinfo().items()}


def test_the_node_set_decides_the_nodes(master):
    assert slots(master) == {"localhost": (1, True)}
    set_nodes(master, {"localhost": 1, NEW: 2})
    poll_for(lambda: slots(master) == {"localhost": (1, True), NEW: (2, True)}, 30, "new node")
    # a table row overrides the slots of a host of the set; other rows are no nodes
    master.disco.config = [[NEW, "3"], ["127.0.0.9", "5"]]
    assert slots(master) == {"localhost": (1, True), NEW: (3, True)}
    master.disco.config = []
    assert slots(master) == {"localhost": (1, True), NEW: (2, True)}
    set_nodes(master, {NEW: 2})
    poll_for(lambda: slots(master) == {NEW: (2, True)}, 30, "localhost to leave")


def test_a_node_that_appears_mid_job_gets_tasks(master):
    inputs = ["raw://%d" % i for i in range(12)]
    job = Job(master=master.url).run(input=inputs, map=slow_int_map, reduce=sum_reduce)
    events = Disco(master.url).events
    poll_for(lambda: any("map:" in e[1][2] for e in events(job.name)), 60, "the first task")
    set_nodes(master, {"localhost": 1, NEW: 2})
    answer = list(result_iterator(job.wait(poll_interval=0.1, timeout=120)))
    assert answer == [(sum(range(12)), "")]
    done_on = {host for _o, (_t, host, text) in events(job.name) if text.startswith("DONE: [map:")}
    assert done_on == {"localhost", NEW}, done_on
