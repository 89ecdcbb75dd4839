"""Jobs of many tiny tasks on a real master (issue 13 "many tasks", issue 11 point 8).

A classic map job over 50,000 ``raw://`` inputs (one map task each) runs to the end and
every result is checked; 10,000 tiny map tasks feed a reduce whose sums prove that each
map task ran exactly once.  The speed targets (>= 500 tasks/s, 50,000 inputs within
120 s) are benchmark figures (``benchmarks/many_tasks.py``, ``make bench``), not bounds
here: the timeouts below are only there to stop a job that has stalled.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from disco.core import result_iterator
from disco.job import Job

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import many_tasks_funcs as f  # noqa: E402  (the benchmark's job functions)

pytestmark = pytest.mark.slow


@pytest.mark.timeout(3600)
def test_a_map_job_over_50000_raw_inputs_finishes_with_every_result(master: Any) -> None:
    n = 50_000
    job = Job(name="Many50k", master=master.url).run(
        input=["raw://%d" % i for i in range(n)], map=f.square_map
    )
    results = job.wait(poll_interval=1)  # map_shuffle: one index of the 50,000 outputs
    got = {}
    for key, value in result_iterator(results):
        assert key not in got, "result %r twice" % key
        got[key] = value
    assert len(got) == n
    assert got == {str(i): str(i * i) for i in range(n)}


@pytest.mark.timeout(1200)
def test_ten_thousand_tiny_map_tasks_feed_a_reduce(master: Any) -> None:
    n = 10_000
    job = Job(name="Many10k", master=master.url).run(
        input=["raw://%d" % i for i in range(n)],
        map=f.residue_map,
        reduce=f.sum_reduce,
        partitions=2,
    )
    results = job.wait(poll_interval=1)
    got = dict(result_iterator(results))
    want: dict[str, int] = {}
    for i in range(n):
        want["r%d" % (i % 7)] = want.get("r%d" % (i % 7), 0) + i
    assert {k: int(v) for k, v in got.items()} == want


@pytest.mark.timeout(120)
def test_the_jobdata_does_not_carry_the_inputs(master: Any) -> None:
    # Every task unpickles the jobdata: with the inputs in it a task of a job of n
    # inputs would cost O(n) (docs/decisions.md).  The tasks get theirs from the master.
    import pickle

    sizes = []
    for n in (3, 3000):
        job = Job(name="Data%d" % n, master=master.url).run(
            input=["raw://%d" % i for i in range(n)], map=f.square_map
        )
        jobpack = master.disco.jobpack(job.name)
        _job, jobargs = pickle.loads(jobpack.jobdata)
        assert "input" not in jobargs and "map" in jobargs
        assert len(jobpack.jobdict["input"]) == n  # the master still gets them all
        sizes.append(len(jobpack.jobdata))
        if n == 3:
            assert dict(result_iterator(job.wait(poll_interval=0.1))) == {
                "0": "0",
                "1": "1",
                "2": "4",
            }
        else:
            job.kill()
    assert abs(sizes[1] - sizes[0]) < 100  # the job names differ, not the data
