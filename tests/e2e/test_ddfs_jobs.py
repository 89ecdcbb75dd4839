"""What stands on DDFS, with real jobs on a real master (ddfs.md 7, master-api.md 2.7):
OOB values (``put``/``get``, ``oob_list``/``oob_get``), ``profile=True`` and
``profile_stats``, ``tag://`` inputs of classic and pipeline jobs, ``save_results``,
``result_iterator(..., ddfs=...)``, ``disco oob``/``disco pstats`` and purge."""

from __future__ import annotations

import io
import pstats
from typing import Any

import pytest

from disco.core import Disco, Job, result_iterator
from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from disco.error import CommError, DiscoError, JobError
from tests.conftest import _assert_no_leaked_workers, child_pids

pytestmark = pytest.mark.timeout(120)

FAST = {"DDFS_DELAYED_FLUSH": "0.05"}  # OOB puts are delayed appends (ddfs.md 7.3)


def embedded(root: Any, nodes: Any = None, **settings: str) -> EmbeddedMaster:
    return EmbeddedMaster(root=root, nodes=nodes, settings={**FAST, **settings}, retry_delay=0.0)


@pytest.fixture
def master(tmp_path) -> Any:
    before = child_pids()
    with embedded(tmp_path / "disco") as m:
        yield m
    _assert_no_leaked_workers(before)


# -- job functions (by value: they see only the injected names) ----------------------------
def oob_map(line, params):
    put("line-%s" % line, line.upper().encode())  # noqa: F821 - injected on the node
    yield line, 1


def oob_reduce(iter, params):
    for line, _count in iter:
        yield line, get("line-%s" % line)  # noqa: F821 - injected on the node
    yield "missing", get("no-such-key")  # noqa: F821


def bad_key_map(line, params):
    put("bad key", b"x")  # noqa: F821
    yield line, 1


def task_oob_map(line, params):
    Task.put("twice", b"first")  # noqa: F821 - the Task object of the worker
    Task.put("twice", b"second")  # noqa: F821
    yield line, Task.get("twice")  # noqa: F821


def wait(job: Any) -> list[Any]:
    return job.wait(poll_interval=0.1)


# -- OOB ----------------------------------------------------------------------------------
def test_put_in_map_get_in_reduce(master) -> None:
    job = Job(master=master.url).run(
        input=["raw://a", "raw://b", "raw://c"], map=oob_map, reduce=oob_reduce
    )
    got = dict(result_iterator(wait(job)))
    assert got == {"a": b"A", "b": b"B", "c": b"C", "missing": None}
    disco: Disco = master.disco
    assert sorted(disco.oob_list(job.name)) == ["line-a", "line-b", "line-c"]
    assert sorted(job.oob_list()) == ["line-a", "line-b", "line-c"]
    assert disco.oob_get(job.name, "line-b") == b"B"
    assert disco.oob_get(job.name, "nokey") is None
    urls = DDFS(master.url).urls("disco:job:oob:%s" % job.name)
    assert len(urls) == 3  # one blob per put


def test_the_newest_put_wins_and_task_methods_work(master) -> None:
    job = Job(master=master.url).run(input=["raw://x"], map=task_oob_map)
    assert list(result_iterator(wait(job))) == [("x", b"second")]
    assert master.disco.oob_get(job.name, "twice") == b"second"
    assert master.disco.oob_list(job.name) == ["twice"]


def test_bad_oob_key_fails_the_task_with_a_clear_error(master) -> None:
    job = Job(master=master.url).run(input=["raw://x"], map=bad_key_map)
    with pytest.raises(JobError) as info:
        wait(job)
    assert "OOB key contains invalid characters (bad key)" in str(info.value)
    with pytest.raises(CommError) as missing:
        master.disco.oob_list(job.name)  # nothing was stored
    assert missing.value.code == 404


def test_oob_get_of_another_job_and_unknown_job(master) -> None:
    with pytest.raises(DiscoError, match="Unknown key or jobname"):
        master.disco.oob_get("Nobody@1:2:3", "key")


# -- profile ------------------------------------------------------------------------------
def busy_map(line, params):
    total = sum(i * i for i in range(20000))
    yield line, total


def count_reduce(iter, params):
    total = 0
    for key, value in iter:
        total += 1
        yield key, value


def test_profile_stats_of_map_and_reduce(master) -> None:
    job = Job(master=master.url).run(
        input=["raw://p", "raw://q"], map=busy_map, reduce=count_reduce, profile=True
    )
    assert len(list(result_iterator(wait(job)))) == 2
    keys = master.disco.oob_list(job.name)
    assert sum(k.startswith("profile-map:") for k in keys) == 2
    assert sum(k.startswith("profile-reduce:") for k in keys) == 1
    out = io.StringIO()
    stats = master.disco.profile_stats(job.name, stream=out)
    assert isinstance(stats, pstats.Stats)
    names = {func[2] for func in stats.stats}
    assert "busy_map" in names and "count_reduce" in names
    only_map = master.disco.profile_stats(job.name, mode="map")
    assert "busy_map" in {f[2] for f in only_map.stats}
    assert "count_reduce" not in {f[2] for f in only_map.stats}
    only_reduce = master.disco.profile_stats(job.name, mode="reduce")
    assert "count_reduce" in {f[2] for f in only_reduce.stats}
    stats.print_stats(5)
    assert "function calls" in out.getvalue()


def test_profile_stats_without_profile_data(master) -> None:
    job = Job(master=master.url).run(input=["raw://p"], map=oob_map)
    wait(job)
    with pytest.raises(JobError, match="No profile data"):
        master.disco.profile_stats(job.name)
