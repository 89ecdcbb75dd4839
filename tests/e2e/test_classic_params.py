"""Every classic worker parameter of library.md 10.1 in jobs on a real master.

One map/reduce job sets each parameter to a non-default value whose effect shows in
the results; the answer is checked against a plain-Python computation.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from disco.core import result_iterator
from disco.job import Job
from disco.worker import Params
from disco.worker.classic.func import sum_combiner
from disco.worker.task_io import (
    chain_reader,
    disco_output_stream,
    plain_output_stream,
    task_input_stream,
    task_output_stream,
)
from tests.e2e import classic_params_funcs as f
from tests.worker import jobfuncs

pytestmark = pytest.mark.timeout(120)

LINES = ["apple banana apple", "zebra apple", "mango kiwi zebra zebra"]
WEIGHT = 3


def expected(prefix: str) -> dict[str, int]:
    """Reduce totals: per map task each word's combined count is weighted, doubled by
    map_init, summed by the combiner, doubled by the output stream, plus one in the
    reduce input stream; the reduce multiplies the sum by FACTOR."""
    totals: Counter[str] = Counter()
    for line in LINES:
        for word, count in Counter(line.split()).items():
            totals[prefix + word] += 2 * (count * WEIGHT * 2) + 1
    return {word: total * f.FACTOR for word, total in totals.items()}


def read_plain(results: list[Any]) -> list[tuple[str, str]]:
    """Records written by ``plain_output_stream``: ``<len> <key> <len> <value>\\n``."""
    records = []
    for line in result_iterator(results, reader=None):
        _, key, _, value = line.split()
        records.append((key.decode(), value.decode()))
    return records


def test_every_classic_parameter(master: Any) -> None:
    job = Job(name="AllParams", master=master.url).run(
        input=["raw://" + line for line in LINES],
        map=f.weighted_map,
        map_init=f.skip_marker_init,
        map_reader=f.split_reader,
        map_input_stream=(task_input_stream, f.prefix_stream),
        map_output_stream=(task_output_stream, disco_output_stream, f.doubling_output),
        combiner=sum_combiner,
        partition=f.first_letter_partition,
        partitions=2,
        reduce=f.summing_reduce,
        reduce_init=f.counting_reduce_init,
        reduce_reader=None,
        reduce_input_stream=(task_input_stream, chain_reader, f.plus_one_stream),
        reduce_output_stream=(task_output_stream, plain_output_stream),
        sort=True,
        sort_buffer_size="1M",
        params=Params(prefix="x-"),
        status_interval=3,
        required_files={"weights.txt": str(WEIGHT).encode()},
        required_modules=["tests.e2e.classic_params_funcs"],
        scheduler={"max_cores": 1},
    )
    results = job.wait(poll_interval=0.1)
    assert len(results) == 2  # one reduce task per partition
    records = read_plain(results)
    partitions = sorted(int(v) for k, v in records if k == "partition")
    assert partitions == [0, 1]
    counts = {k: int(v) for k, v in records if k != "partition"}
    assert counts == expected("x-")

    # the partition function split the keys by first letter (a-l, m-z)
    by_file = [read_plain([entry]) for entry in results]
    for records in by_file:
        label = int(dict(records)["partition"])
        words = [k for k, _ in records if k != "partition"]
        assert all((w[2:] < "m") == (label == 0) for w in words)

    pack = master.disco.jobpack(job.name)
    assert pack.jobdict["scheduler"] == {"max_cores": 1}
    assert pack.jobdict["nr_reduces"] == 2
    messages = [event[2] for _, event in master.disco.events(job.name)]
    # status_interval=3: a status message after every third entry
    assert any("3 entries mapped" in m for m in messages)
    assert any("3 entries reduced" in m for m in messages)
    assert any("Finished sorting" in m for m in messages)  # sort=True: the disk sort ran
    info = master.disco.jobinfo(job.name)
    assert [row[0] for row in info["pipeline"]] == ["map", "map_shuffle", "reduce"]


def test_reduce2_signature_and_unpartitioned_map(master: Any) -> None:
    job = Job(name="Reduce2", master=master.url).run(
        input=["raw://" + line for line in LINES],
        map=f.weighted_map,
        map_reader=f.split_reader,
        map_input_stream=(task_input_stream, f.prefix_stream),
        partitions=None,
        reduce=jobfuncs.sum_reduce2,
        params=Params(prefix=""),
        required_files={"weights.txt": b"1"},
    )
    results = job.wait(poll_interval=0.1)
    got = dict((k.decode(), v) for k, v in result_iterator(results))
    assert got == dict(Counter(" ".join(LINES).split()))


def test_injected_names_on_a_real_master(cluster: Any) -> None:
    """library.md 10.4 with the master's real TASK reply, on a node that is not the
    master's own host."""
    job = Job(name="Injected", master=cluster.url).run(
        input=["raw://127.0.0.2", ["raw://127.0.0.2", "raw://alt"]],
        map=jobfuncs.injected_map,
        partitions=None,
    )
    records = list(result_iterator(job.wait(poll_interval=0.1)))
    got: dict[str, list[Any]] = {}
    for key, value in records:
        got.setdefault(key, []).append(value)
    assert got["name"] == [job.name, job.name]
    assert got["host"] == ["127.0.0.2", "127.0.0.2"]  # raw://<host> inputs are pinned there
    assert got["master"] == [cluster.url] * 2
    assert got["partition"] == [0, 0]
    # one map task per input, each seeing its own replica list
    assert sorted(got["inputs"]) == [[["raw://127.0.0.2"]], [["raw://127.0.0.2", "raw://alt"]]]
    assert got["task"] == ["map", "map"] and got["map_is_builtin"] == [True, True]
