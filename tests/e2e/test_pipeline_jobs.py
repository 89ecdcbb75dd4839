"""Pipeline jobs end to end: input kinds, long pipelines, concurrent stages, empty stages.

``tag://`` inputs (DDFS) are in ``test_pipeline_tags.py``; ``save_results`` of pipeline
jobs is tested with the other DDFS jobs in ``tests/e2e/test_ddfs_jobs.py``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.test import TestServer
from disco.util import parse_dir
from disco.worker.pipeline.worker import Stage, Worker
from disco.worker.task_io import chain_reader, task_input_stream
from tests.worker import pipefuncs as f

pytestmark = pytest.mark.timeout(120)

TEXT = "the cat sat on the mat\na cat and a dog\n"
CHAIN = [task_input_stream, chain_reader]


def wordcount() -> list[Any]:
    return [
        ("split", Stage("map", process=f.hash_words)),
        ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
    ]


def run(master: Any, inputs: list[Any], pipeline: list[Any], **jobargs: Any) -> Any:
    return Job(master=master.url, worker=Worker()).run(input=inputs, pipeline=pipeline, **jobargs)


def counts(job: Any) -> dict[Any, int]:
    return dict(result_iterator(job.wait(poll_interval=0.1)))


def test_raw_http_and_file_inputs(any_master: Any, tmp_path: Any) -> None:
    master = any_master  # the local and the Dask backend
    path = tmp_path / "text.txt"
    path.write_text(TEXT)
    server = TestServer.create(("127.0.0.1", 0), lambda _path: TEXT)
    server.start()
    try:
        inputs = ["raw://" + TEXT.splitlines()[0], "%s/text" % server.address, "file://%s" % path]
        got = counts(run(master, inputs, wordcount()))
    finally:
        server.stop()
    want = Counter(TEXT.split()) + Counter(TEXT.split()) + Counter(TEXT.splitlines()[0].split())
    assert got == dict(want)


@pytest.mark.parametrize("kind", ["dir", "disco"])
def test_results_of_a_job_as_dir_and_disco_inputs(any_master: Any, kind: str) -> None:
    master = any_master  # the local and the Dask backend
    first = run(master, ["raw://" + line for line in TEXT.splitlines()], wordcount())
    results = first.wait(poll_interval=0.1)
    if kind == "disco":
        inputs = [url for index in results for url in parse_dir(index)]
        assert all(url.startswith("disco://") for url in inputs)
    else:
        inputs = results
        assert all(r[0].startswith("dir://") for r in results)
    pipeline = [
        ("split", Stage("copy", process=f.copy_records, input_chain=CHAIN)),
        ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
    ]
    second = run(master, inputs, pipeline)
    assert counts(second) == dict(Counter(TEXT.split()))


def test_four_stages_with_group_node_label_condensing(cluster: Any) -> None:
    lines = [
        "raw://%s:%s" % (host, line)
        for host in ("localhost", "127.0.0.2", "127.0.0.3")
        for line in TEXT.splitlines()
    ]
    pipeline = [
        ("split", Stage("map", process=f.hash_words)),
        ("group_node_label", Stage("condense", process=f.sum_combined, combine=True)),
        ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
        ("group_all", Stage("total", process=f.sum_combined, combine=True)),
    ]
    job = run(cluster, lines, pipeline)
    # raw://<host>:<line>: the map sees "<host>:<line>", the host joins the first word
    words = Counter(w for url in lines for w in url[len("raw://") :].split())
    assert counts(job) == dict(words)
    rows = {row[0]: row for row in job.jobinfo()["pipeline"]}
    assert rows["map"][4] == 6
    # one condense task per (node, label) that has data: at most 3 nodes x 3 labels
    condense = rows["condense"][4]
    assert 3 <= condense <= 9
    assert rows["reduce"][4] == 3 and rows["total"][4] == 1


def test_concurrent_stage_starts_before_the_previous_stage_ends(master: Any) -> None:
    pipeline = [
        ("split", Stage("slow", process=f.slow_split)),
        ("group_all", Stage("collect", init=f.stamp_start, process=f.collect_times), True),
    ]
    job = run(master, ["raw://0.05", "raw://2.0"], pipeline)
    got = dict(result_iterator(job.wait(poll_interval=0.1)))
    started = got["2.0"][0]
    assert started == got["0.05"][0]  # one task of the concurrent stage
    assert started < got["2.0"][1], "the collect task started only after the slow task"
    assert job.jobpack().jobdict["pipeline"][1] == ["collect", "group_all", True]


def test_stages_with_no_output(any_master: Any) -> None:
    master = any_master  # the local and the Dask backend
    pipeline = [
        ("split", Stage("silent", process=f.nothing)),
        ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
        ("group_all", Stage("total", process=f.sum_combined, combine=True)),
    ]
    job = run(master, ["raw://a b", "raw://c"], pipeline)
    assert job.wait(poll_interval=0.1) == []
    rows = {row[0]: row[1:] for row in job.jobinfo()["pipeline"]}
    assert rows == {"silent": [0, 0, 0, 2, 0], "reduce": [0, 0, 0, 0, 0], "total": [0, 0, 0, 0, 0]}
    assert list(result_iterator([])) == []


def test_stage_names_with_spaces_and_slashes(master: Any) -> None:
    """Any stage name works: file and URL names use a file-safe form of it."""
    pipeline = [
        ("split", Stage("split words/now", process=f.hash_words)),
        ("group_label", Stage("sum up", process=f.sum_combined, combine=True)),
    ]
    job = run(master, ["raw://" + line for line in TEXT.splitlines()], pipeline)
    assert counts(job) == dict(Counter(TEXT.split()))
