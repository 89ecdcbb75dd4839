"""``sort=True`` on a real master (issue 13): records sorted in memory when they fit
``sort_buffer_size`` and in spilled runs when they do not give the same result, for str
and bytes keys, in a classic reduce and in a pipeline ``combine=True, sort=True`` stage."""

from __future__ import annotations

from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.worker.classic.worker import Worker as ClassicWorker
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker

N = 6000  # records per input; 3 inputs


def inputs() -> list[str]:
    return ["raw://%d" % i for i in range(3)]


def make_records(line: Any, params: Any) -> Any:
    import random

    rng = random.Random(int(line))
    for i in range(params["n"]):
        word = "".join(rng.choice("aé🍐bZ ") for _ in range(rng.randrange(1, 6)))
        key = word if params["kind"] == "str" else word.encode("utf-8")
        yield key, "%s-%d" % (line, i)


def in_order(iter: Any, out: Any, params: Any) -> None:
    """Writes every record, failing the task if a key is smaller than the one before."""
    last = None
    for key, value in iter:
        assert last is None or last <= key, (last, key)
        last = key
        out.add(key, value)


def expected(kind: str) -> list[tuple[Any, str]]:
    got = []
    for line in inputs():
        got.extend(make_records(line[len("raw://") :], {"n": N, "kind": kind}))
    return sorted(got)


@pytest.mark.parametrize("kind", ["str", "bytes"])
@pytest.mark.parametrize("buffer", ["1G", "32K"])
def test_classic_reduce_sort_true_in_memory_and_spilled(
    master: Any, kind: str, buffer: str
) -> None:
    job = Job(master=master.url, worker=ClassicWorker(sort_buffer_size=buffer)).run(
        input=inputs(),
        map=make_records,
        reduce=in_order,
        sort=True,
        params={"n": N, "kind": kind},
    )
    got = list(result_iterator(job.wait()))
    assert sorted(got) == expected(kind)  # every record once
    assert [k for k, _ in got] == [k for k, _ in expected(kind)]  # in key order
    assert_ties_in_input_order(got)
    events = " ".join(str(e) for e in master.disco.events(job.name))
    assert "Finished sorting" in events


def pairs_process(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for line in inp:
        for key, value in make_records(line, state):
            interface.output(0).add(key, value)


def sorted_process(interface: Any, state: Any, label: Any, inp: Any) -> None:
    in_order(inp, interface.output(label), None)


def keep_params(interface: Any, params: Any) -> Any:
    return params


@pytest.mark.parametrize("kind", ["str", "bytes"])
@pytest.mark.parametrize("buffer", ["1G", "32K"])
def test_pipeline_combine_sort_in_memory_and_spilled(master: Any, kind: str, buffer: str) -> None:
    pipeline = [
        ("split", Stage("make", init=keep_params, process=pairs_process)),
        ("group_all", Stage("sorted", process=sorted_process, combine=True, sort=True)),
    ]
    job = Job(master=master.url, worker=PipelineWorker(sort_buffer_size=buffer)).run(
        input=inputs(),
        pipeline=pipeline,
        params={"n": N, "kind": kind},
    )
    got = list(result_iterator(job.wait()))
    assert sorted(got) == expected(kind)
    assert [k for k, _ in got] == [k for k, _ in expected(kind)]
    assert_ties_in_input_order(got)


def assert_ties_in_input_order(got: list[tuple[Any, str]]) -> None:
    """Records of equal keys keep their input order: within a key, the records of one
    input come in the order they were made (their ``-<i>`` suffix grows)."""
    last: dict[tuple[Any, str], int] = {}
    ties = 0
    for key, value in got:
        line, i = value.rsplit("-", 1)
        before = last.get((key, line), -1)
        assert int(i) > before, (key, value)
        ties += before >= 0
        last[(key, line)] = int(i)
    assert ties > 1000  # the keys really repeat
