"""Pipeline jobs over ``tag://`` inputs (DDFS), as the tutorial does with classic jobs.

The client expands a tag into its blobs' replica lists (``util.inputlist``); the first
stage reads plain blobs with the default input chain and ``ddfs chunk`` blobs (internal
record format) with ``chain_reader``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.ddfs import DDFS
from disco.worker.pipeline.worker import Stage, Worker
from disco.worker.task_io import chain_reader, task_input_stream
from tests.worker import pipefuncs as f

pytestmark = pytest.mark.timeout(120)

TEXTS = [b"the cat sat on the mat\n", b"a cat and a dog\nthe end\n"]
WORDS = Counter(w.decode() for text in TEXTS for w in text.split())


def wordcount(first_chain: list[Any]) -> list[Any]:
    return [
        ("split", Stage("map", process=f.hash_words, input_chain=first_chain)),
        ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
    ]


def test_tag_of_plain_blobs(cluster: Any) -> None:
    ddfs = DDFS(cluster.url)
    _urls, blobs = ddfs.push("test:pipe:plain", [(t, "text%d" % i) for i, t in enumerate(TEXTS)])
    assert len(blobs) == 2
    job = Job(master=cluster.url, worker=Worker()).run(
        input=["tag://test:pipe:plain"], pipeline=wordcount([])
    )
    inputs = job.jobpack().jobdict["inputs"]
    assert sorted(row[2] for row in inputs) == sorted(blobs)  # one input per blob
    assert dict(result_iterator(job.wait(poll_interval=0.1))) == dict(WORDS)


def test_tag_of_chunked_records_with_chain_reader(cluster: Any, tmp_path: Any) -> None:
    paths = []
    for i, text in enumerate(TEXTS):
        path = tmp_path / ("part%d.txt" % i)
        path.write_bytes(text)
        paths.append(str(path))
    DDFS(cluster.url).chunk("test:pipe:chunked", paths, replicas=2)
    job = Job(master=cluster.url, worker=Worker()).run(
        input=["tag://test:pipe:chunked"], pipeline=wordcount([task_input_stream, chain_reader])
    )
    assert dict(result_iterator(job.wait(poll_interval=0.1))) == dict(WORDS)
