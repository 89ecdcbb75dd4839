"""The five groupings of library.md 11.3 on three local nodes, with real pipeline jobs.

A first ``split`` stage runs one task per raw input ``raw://<node>:<tag>`` (pinned to
that node, master-api.md 7.3) and writes every tag to labels 0 and 1, so each node
holds an index file with two labels.  The second stage, under test, reports the group
of each of its tasks, the node it ran on and the records it saw.
"""

from __future__ import annotations

from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.test import TestServer
from disco.worker.pipeline.worker import Stage, Worker
from tests.worker import pipefuncs as f

pytestmark = pytest.mark.timeout(90)

NODES = ["localhost", "127.0.0.2", "127.0.0.3"]
TAGS = {"a": "localhost", "b": "127.0.0.2", "c": "127.0.0.2", "d": "127.0.0.3"}
INPUTS = ["raw://%s:%s" % (host, tag) for tag, host in sorted(TAGS.items())]


def probe(grouping: str) -> tuple[str, Stage]:
    return (grouping, Stage("probe", init=f.seen_init, process=f.record_seen, done=f.report_seen))


def run_two_stages(cluster: Any, grouping: str) -> list[tuple[tuple[int, str, str], list[Any]]]:
    pipeline = [("split", Stage("spread", process=f.spread)), probe(grouping)]
    job = Job(master=cluster.url, worker=Worker()).run(input=INPUTS, pipeline=pipeline)
    return sorted(result_iterator(job.wait(poll_interval=0.1)))


def seen(label: int, *tags: str) -> list[tuple[int, str, int]]:
    return [(label, tag, label) for tag in sorted(tags)]


def tags_on(host: str) -> list[str]:
    return [tag for tag, where in TAGS.items() if where == host]


def test_split_one_task_per_label_of_each_index(cluster: Any) -> None:
    got = run_two_stages(cluster, "split")
    want = sorted(
        ((label, host, host), seen(label, tag)) for tag, host in TAGS.items() for label in (0, 1)
    )
    assert got == want


def test_group_label_one_task_per_label_across_nodes(cluster: Any) -> None:
    got = run_two_stages(cluster, "group_label")
    assert [(key[0], key[1], records) for key, records in got] == [
        (0, "", seen(0, *TAGS)),
        (1, "", seen(1, *TAGS)),
    ]


def test_group_node_label_one_task_per_node_and_label(cluster: Any) -> None:
    got = run_two_stages(cluster, "group_node_label")
    want = sorted(
        ((label, host, host), seen(label, *tags_on(host))) for host in NODES for label in (0, 1)
    )
    assert got == want


def test_group_node_one_task_per_node_with_every_label(cluster: Any) -> None:
    got = run_two_stages(cluster, "group_node")
    want = sorted(
        ((0, host, host), sorted(seen(0, *tags_on(host)) + seen(1, *tags_on(host))))
        for host in NODES
    )
    assert got == want


def test_group_all_one_task_with_everything(cluster: Any) -> None:
    got = run_two_stages(cluster, "group_all")
    assert len(got) == 1
    (label, host, _ran_on), records = got[0]
    assert (label, host) == (0, "")
    assert records == sorted(seen(0, *TAGS) + seen(1, *TAGS))


@pytest.mark.parametrize("grouping", ["group_node", "group_node_label"])
def test_inputs_outside_the_cluster_count_as_one_node(
    cluster: Any, tmp_path: Any, grouping: str
) -> None:
    server = TestServer.create(("127.0.0.1", 0), lambda path: "from-http\n")
    server.start()
    try:
        inputs = [
            "raw://ext-a:x",
            "raw://ext-b:y",
            "%s/page" % server.address,  # 127.0.0.1 is not a node name ("localhost" is)
            "raw://127.0.0.2:z",
        ]
        stage = Stage("probe", init=f.seen_init, process=f.record_entries, done=f.report_seen)
        job = Job(master=cluster.url, worker=Worker()).run(
            input=inputs, pipeline=[(grouping, stage)]
        )
        got = sorted(result_iterator(job.wait(poll_interval=0.1)))
    finally:
        server.stop()
    assert [(key[:2], records) for key, records in got] == [
        ((0, ""), ["ext-a:x", "ext-b:y", "from-http"]),
        ((0, "127.0.0.2"), ["127.0.0.2:z"]),
    ]
    assert got[1][0][2] == "127.0.0.2"  # pinned to its node


def test_split_keeps_one_task_per_outside_input(cluster: Any) -> None:
    stage = Stage("probe", init=f.seen_init, process=f.record_entries, done=f.report_seen)
    job = Job(master=cluster.url, worker=Worker()).run(
        input=["raw://ext-a:x", "raw://ext-b:y"], pipeline=[("split", stage)]
    )
    got = sorted(result_iterator(job.wait(poll_interval=0.1)))
    assert [(key[:2], records) for key, records in got] == [
        ((0, "ext-a"), ["ext-a:x"]),
        ((0, "ext-b"), ["ext-b:y"]),
    ]
