"""DDFS on the nodes of a Dask cluster (issue 9, parts D and F together): blobs pushed
to the Dask nodes through their upload servers, a job over a ``tag://`` input runs its
map tasks on the nodes that hold the blobs."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import pytest

from disco.core import result_iterator
from disco.ddfs.client import DDFS
from disco.job import Job
from tests.backends import dask_jobs as jobs

pytestmark = [pytest.mark.dask, pytest.mark.timeout(300)]


def test_tag_inputs_run_where_their_blobs_are(on_dask: Any) -> None:
    ddfs = DDFS(on_dask.url)
    texts = {"t%d" % i: ("%s\n" % " ".join(jobs.WORDS[i:])).encode() for i in range(4)}
    # one replica each, forced on alternating nodes: the map task must go there
    for i, (name, data) in enumerate(sorted(texts.items())):
        host = ("127.0.0.2", "127.0.0.3")[i % 2]
        ddfs.push("data:dask", [(data, name)], replicas=1, forceon=[host])
    blobs = [b for urls in ddfs.blobs("data:dask") for b in urls]
    assert {re.match(r"\w+://([^/:]+)", u).group(1) for u in blobs} == {
        "127.0.0.2",
        "127.0.0.3",
    }
    job = Job(name="DaskTag", master=on_dask.url).run(
        input=["tag://data:dask"],
        map=jobs.slow_word_map,
        reduce=jobs.sum_reduce,
        params={"delay": 0},
    )
    got = {
        (k.decode() if isinstance(k, bytes) else str(k)): int(v)
        for k, v in result_iterator(job.wait(poll_interval=0.1))
    }
    want = Counter(w for data in texts.values() for w in data.decode().split())
    assert got == dict(want)
    # each map task ran on the node holding its blob (its only replica)
    placed = {}
    for _, (_, _, message) in on_dask.disco.events(job.name):
        match = re.fullmatch(r"map:(\d+) assigned to (\S+)", message)
        if match:
            placed[int(match.group(1))] = match.group(2)
    hosts = [re.match(r"\w+://([^/:]+)", u).group(1) for u in blobs]
    assert sorted(placed) == list(range(len(blobs)))
    assert [placed[i] for i in range(len(blobs))] == hosts
    assert set(placed.values()) == {"127.0.0.2", "127.0.0.3"}
