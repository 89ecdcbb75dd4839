"""Chaining jobs (library.md 3.3): ``JobChain`` and results as the next job's input.

Both worker kinds, and across them: a job's results are ``dir://`` index URLs, read by
the next job with ``chain_reader`` (classic ``map_reader``, pipeline ``input_chain``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.job import JobChain, SimpleJob
from disco.worker.classic.func import chain_reader
from disco.worker.classic.worker import Worker as ClassicWorker
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker
from disco.worker.task_io import task_input_stream
from tests.worker import pipefuncs as f

pytestmark = pytest.mark.timeout(120)

LINES = ["raw://to be or not to be", "raw://be quick"]
WORDS = Counter(w for url in LINES for w in url[len("raw://") :].split())


def pipeline_count(first_chain: list[Any]) -> PipelineWorker:
    return PipelineWorker(
        pipeline=[
            ("split", Stage("map", process=f.hash_words, input_chain=first_chain)),
            ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
        ]
    )


def pipeline_copy() -> PipelineWorker:
    chain = [task_input_stream, chain_reader]
    return PipelineWorker(
        pipeline=[
            ("split", Stage("copy", process=f.copy_records, input_chain=chain)),
            ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
        ]
    )


def classic_count() -> ClassicWorker:
    return ClassicWorker(map=f.classic_words, reduce=f.classic_sum)


def classic_double() -> ClassicWorker:
    return ClassicWorker(map=f.classic_double, map_reader=chain_reader, reduce=f.classic_sum)


@pytest.mark.parametrize(
    "first, second, factor",
    [
        (classic_count, classic_double, 2),
        (lambda: pipeline_count([]), pipeline_copy, 1),
        (classic_count, pipeline_copy, 1),
        (lambda: pipeline_count([]), classic_double, 2),
    ],
    ids=["classic-classic", "pipeline-pipeline", "classic-pipeline", "pipeline-classic"],
)
def test_job_chain(master: Any, first: Any, second: Any, factor: int) -> None:
    one = Job(name="One", master=master.url, worker=first())
    two = Job(name="Two", master=master.url, worker=second())
    chain = JobChain({one: LINES, two: one})
    assert chain.wait(poll_interval=0.1) is chain
    assert one.name.startswith("One@") and two.name.startswith("Two@")
    got = dict(result_iterator(two.wait()))
    assert got == {w: n * factor for w, n in WORDS.items()}
    chain.purge()
    assert master.disco.joblist() == []


def test_chain_by_results_three_jobs_mixing_workers(any_master: Any) -> None:
    master = any_master  # the local and the Dask backend
    job = Job(master=master.url, worker=classic_count()).run(input=LINES)
    job = Job(master=master.url, worker=pipeline_copy()).run(input=job.wait(poll_interval=0.1))
    job = Job(master=master.url, worker=classic_double()).run(input=job.wait(poll_interval=0.1))
    assert dict(result_iterator(job.wait(poll_interval=0.1))) == {
        w: 2 * n for w, n in WORDS.items()
    }


def test_chain_with_a_pending_job_waits(master: Any) -> None:
    one = Job(name="One", master=master.url, worker=classic_count())
    two = Job(name="Two", master=master.url, worker=classic_double())
    chain = JobChain({two: [one], one: LINES})
    first_round = chain.walk()
    assert first_round == 0 and two.name == "Two"  # waits for one
    chain.wait(poll_interval=0.1)
    assert dict(result_iterator(two.wait())) == {w: 2 * n for w, n in WORDS.items()}


def test_simple_job_runs_map_and_reduce_on_a_real_master(any_master: Any) -> None:
    master = any_master  # the local and the Dask backend
    class Count(SimpleJob):
        map = f.simple_map
        reduce = f.simple_reduce

    job = Count(master=master.url).run(input=LINES)
    assert job.jobpack().jobdict["map?"] is True and job.jobpack().version == 1
    assert dict(result_iterator(job.wait(poll_interval=0.1))) == dict(WORDS)
