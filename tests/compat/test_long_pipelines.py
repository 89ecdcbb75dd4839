"""Long pipelines finish, and each stage starts as soon as the previous one is done
(issue 11.7): a ``split`` map stage, N intermediate stages (all ``group_label`` or all
``group_node_label``) and a ``group_label`` reduce stage with init and done."""

from __future__ import annotations

import time
from typing import Any

import pytest

from disco.core import Disco, Job, result_iterator
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker

INPUTS = ["raw://%d" % i for i in range(5)]


def first(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for record in inp:
        n = int(record)
        interface.output(n % 3).add(n, 1)


def middle(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for key, value in inp:
        interface.output(label).add(key, value + 1)


def reduce_init(interface: Any, params: Any) -> dict[int, int]:
    return {}


def reduce_process(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for key, value in inp:
        state[key] = value


def reduce_done(interface: Any, state: Any) -> None:
    out = interface.output(0)
    for key, value in sorted(state.items()):
        out.add(key, value)


def long_pipeline(grouping: str, n: int) -> list[Any]:
    return [
        ("split", Stage("map", process=first)),
        *[(grouping, Stage("s%02d" % i, process=middle)) for i in range(n)],
        (
            "group_label",
            Stage("reduce", init=reduce_init, process=reduce_process, done=reduce_done),
        ),
    ]


@pytest.mark.parametrize("grouping", ["group_label", "group_node_label"])
@pytest.mark.parametrize("n", [10, 30])
def test_long_pipeline_finishes_with_immediate_stage_transitions(
    master: Any, grouping: str, n: int
) -> None:
    run_and_check(master, grouping, n)


def test_long_pipeline_on_three_nodes(cluster: Any) -> None:
    run_and_check(cluster, "group_node_label", 10)


def run_and_check(master: Any, grouping: str, n: int) -> None:
    started = time.monotonic()
    job = Job(master=master.url, worker=PipelineWorker()).run(
        input=INPUTS, pipeline=long_pipeline(grouping, n)
    )
    results = job.wait(timeout=110)
    elapsed = time.monotonic() - started
    assert sorted(result_iterator(results)) == [(i, 1 + n) for i in range(5)]
    print("%d %s stages: %.1f s" % (n, grouping, elapsed))
    gaps = stage_transition_gaps(master, job.name)
    assert len(gaps) == n + 1  # every stage after the first was scheduled
    # The master schedules the next stage in the same step that closes the previous one:
    # the two events carry the same (second-resolution) time, allowing one tick of skew.
    assert max(gaps) <= 1.0, gaps


def stage_transition_gaps(master: Any, jobname: str) -> list[float]:
    """Seconds between "Stage <a> finished" and the next "Stage <b> scheduled" event."""
    finished_at: float | None = None
    gaps = []
    for _offset, (stamp, host, message) in Disco(master.url).events(jobname):
        when = time.mktime(time.strptime(stamp, "%Y/%m/%d %H:%M:%S"))
        if host == "master" and message.startswith("Stage ") and " finished in " in message:
            finished_at = when
        elif host == "master" and message.startswith("Stage ") and " scheduled with " in message:
            if finished_at is not None:
                gaps.append(when - finished_at)
                finished_at = None
    return gaps
