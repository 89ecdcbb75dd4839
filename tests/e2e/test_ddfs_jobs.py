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
from tests.conftest import _assert_no_leaked_workers, child_pids, poll_for

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


# -- save_results -------------------------------------------------------------------------
def bang_map(line, params):
    yield line + "!", ""


def sorted_reduce(iter, params):
    yield from sorted(iter)


def results_tag(job: Any) -> str:
    return "tag://disco:results:%s" % job.name


def test_map_only_job_saves_its_results_in_a_tag(master) -> None:
    inputs = ["raw://%d" % n for n in range(10)]
    job = Job(master=master.url).run(input=inputs, map=bang_map, partitions=None, save_results=True)
    results = wait(job)
    assert results == [results_tag(job)]  # a bare string (master-api.md 2.4)
    assert master.disco.results(job.name) == ("ready", [results_tag(job)])
    assert sorted(result_iterator(results)) == sorted(("%d!" % n, "") for n in range(10))
    ddfs = DDFS(master.url)
    doc = ddfs.get("disco:results:%s" % job.name)
    assert doc["urls"] and all(u[0].startswith("disco://") for u in doc["urls"])
    names = [DDFS.blob_name(u[0]) for u in doc["urls"]]
    assert all(n.startswith("%s:" % job.name) for n in names)  # <job>:<taskid>:<attempt>:
    events = " ".join(e[1][2] for e in master.disco.events(job.name))
    assert "Saving the results in DDFS tag disco:results:%s" % job.name in events
    info = master.disco.jobinfo(job.name)
    assert info["active"] == "ready" and info["results"] == [results_tag(job)]
    # the saved results are the input of a next job, like any tag
    from disco.worker.task_io import chain_reader

    nxt = Job(master=master.url).run(input=results, map=bang_map_pairs, map_reader=chain_reader)
    assert sorted(result_iterator(wait(nxt))) == sorted(
        (("%d!?!?" % n).encode(), "") for n in range(10)
    )


def test_chain_into_a_saved_sorted_job(master) -> None:
    from disco.worker.task_io import chain_reader

    words = ["raw://duck", "raw://goose", "raw://swan"]
    first = Job(master=master.url).run(input=words, map=bang_map, partitions=3)
    second = Job(master=master.url).run(
        input=wait(first),
        map=bang_map_pairs,
        map_reader=chain_reader,
        reduce=sorted_reduce,
        sort=True,
        save=True,
    )
    results = wait(second)
    assert results == [results_tag(second)]
    assert list(result_iterator(results)) == [
        (b"duck!?!?", ""),
        (b"goose!?!?", ""),
        (b"swan!?!?", ""),
    ]


def bang_map_pairs(pair, params):
    key, _value = pair
    yield (key + "?!?").encode(), ""  # sort=True sorts bytes keys


def test_pipeline_job_saves_its_results(master) -> None:
    from disco.worker.pipeline.worker import Stage, Worker
    from tests.worker import pipefuncs as f

    pipeline = [
        ("split", Stage("map", process=f.hash_words)),
        ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
    ]
    job = Job(master=master.url, worker=Worker()).run(
        input=["raw://a b a", "raw://b c"], pipeline=pipeline, save_results=True
    )
    results = wait(job)
    assert results == [results_tag(job)]
    assert dict(result_iterator(results)) == dict(f_counts("a b a b c"))


def f_counts(text: str) -> dict[Any, int]:
    from collections import Counter

    return dict(Counter(text.split()))


def test_result_iterator_reads_the_tag_through_the_given_master(master, monkeypatch) -> None:
    job = Job(master=master.url).run(
        input=["raw://x", "raw://y"], map=bang_map, partitions=None, save=True
    )
    results = wait(job)
    monkeypatch.setenv("DISCO_MASTER", "http://127.0.0.1:9")  # nothing there
    want = [("x!", ""), ("y!", "")]
    assert sorted(result_iterator(results, ddfs=master.url)) == want
    assert sorted(Disco(master.url).result_iterator(results)) == want


def test_refused_blob_upload_makes_the_job_dead(tmp_path) -> None:
    """DDFS cannot store the result blobs (2 replicas asked of 1 node): every attempt
    fails with the reason, and the job ends dead after max_failure_rate attempts."""
    import json

    before = child_pids()
    with embedded(tmp_path / "d", DDFS_BLOB_REPLICAS="2") as m:
        m.disco.request("/disco/ctrl/save_settings", json.dumps({"max_failure_rate": "1"}))
        job = Job(master=m.url).run(
            input=["raw://x"], map=bang_map, partitions=None, save_results=True
        )
        with pytest.raises(JobError) as info:
            wait(job)
        assert m.disco.results(job.name)[0] == "dead"
        events = [e[1][2] for e in m.disco.events(job.name)]
        assert any("Could not save the results in DDFS" in e for e in events)
        assert any(e.startswith("ERROR:") for e in events)
        assert "Could not save the results in DDFS" in str(info.value)
    _assert_no_leaked_workers(before)


def test_refused_results_tag_makes_the_job_dead(tmp_path) -> None:
    """The blobs are stored but DDFS cannot write the results tag (2 tag replicas needed,
    1 node): the job ends dead with an ERROR event instead of staying active."""
    before = child_pids()
    with embedded(tmp_path / "d", DDFS_TAG_MIN_REPLICAS="2", DDFS_TAG_REPLICAS="2") as m:
        job = Job(master=m.url).run(
            input=["raw://x"], map=bang_map, partitions=None, save_results=True
        )
        with pytest.raises(JobError):
            wait(job)
        assert m.disco.results(job.name) == ("dead", [])
        events = [e[1][2] for e in m.disco.events(job.name)]
        [error] = [e for e in events if e.startswith("ERROR: Saving the results in DDFS failed")]
        assert "replication_failed" in error
        # the master keeps serving: a job without save_results still runs
        other = Job(master=m.url).run(input=["raw://y"], map=bang_map)
        assert list(result_iterator(wait(other))) == [("y!", "")]
    _assert_no_leaked_workers(before)


# -- purge and the age GC delete the OOB tag (master-api.md 10.2, 10.6) ---------------------
def on_loop(m: EmbeddedMaster, coro: Any) -> Any:
    """Run a coroutine of the master on its loop (``+deleted`` is not readable by HTTP)."""
    import asyncio

    return asyncio.run_coroutine_threadsafe(coro, m._loop).result(30)


def deleted_names(m: EmbeddedMaster) -> set[str]:
    return on_loop(m, m.server.ddfs.tags.deleted_names())


def test_purge_deletes_the_oob_tag_but_not_the_results_tag(master) -> None:
    ddfs = DDFS(master.url)
    job = Job(master=master.url).run(
        input=["raw://a"], map=oob_map, partitions=None, save_results=True
    )
    wait(job)
    oob = "disco:job:oob:%s" % job.name
    assert ddfs.exists(oob)
    master.disco.purge(job.name)  # performed after the reply (master-api.md 2.4)
    poll_for(lambda: not ddfs.exists(oob), 10, "the OOB tag to be deleted")
    assert oob in deleted_names(master)
    assert ddfs.exists("disco:results:%s" % job.name)  # 10.2: users delete results tags
    with pytest.raises(DiscoError, match="Unknown key or jobname"):
        master.disco.oob_get(job.name, "line-a")


def test_purge_of_a_job_without_oob_leaves_no_tombstone(master) -> None:
    job = Job(master=master.url).run(input=["raw://a"], map=bang_map)
    wait(job)
    master.disco.purge(job.name)
    poll_for(lambda: master.disco.results(job.name)[0] == "unknown job", 10, "the purge")
    assert "disco:job:oob:%s" % job.name not in deleted_names(master)


def test_age_gc_deletes_the_oob_tag_with_the_job_data(tmp_path) -> None:
    import os
    import time

    before = child_pids()
    with embedded(tmp_path / "d", DISCO_GC_AFTER="3600") as m:
        job = Job(master=m.url).run(input=["raw://a"], map=oob_map)
        wait(job)
        runtime = m.server.runtime

        def gc_pass() -> Any:
            return on_loop(m, runtime.gc_once())

        oob = "disco:job:oob:%s" % job.name
        assert gc_pass() == [] and DDFS(m.url).exists(oob)  # young data and tag are kept
        home = os.path.join(m.server.config.disco_data, "localhost")
        [data_dir] = [
            os.path.join(home, hh, job.name)
            for hh in os.listdir(home)
            if os.path.isdir(os.path.join(home, hh, job.name))
        ]
        old = time.time() - 7200
        os.utime(data_dir, (old, old))
        assert gc_pass() == [("localhost", job.name)]
        assert not DDFS(m.url).exists(oob)
    _assert_no_leaked_workers(before)


# -- tag:// inputs (ddfs.md 7.1) -------------------------------------------------------------
def word_map(line, params):
    for word in line.split():
        yield word, 1


def sum_reduce(iter, params):
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)


def push_texts(url: str, texts: dict[str, bytes], tag: str, **kw: Any) -> None:
    ddfs = DDFS(url)
    ddfs.push(tag, [(data, name) for name, data in texts.items()], **kw)


def test_classic_job_over_a_tag_of_tags_with_a_read_token(cluster) -> None:
    from collections import Counter

    url = cluster.url
    ddfs = DDFS(url)
    push_texts(url, {"one": b"a b\nc a\n", "two": b"b b\n"}, "data:plain:1")
    push_texts(url, {"three": b"c d\n"}, "data:plain:2")
    ddfs.chunk("data:chunked", [["raw://a z"]])  # a chunked blob: one record "a z"
    ddfs.put("data:all", [["tag://data:plain:1"], ["tag://data:plain:2"], ["tag://data:all"]])
    want = Counter(b"a b c a b b c d".split())  # the self link is followed once
    job = Job(master=url).run(input=["tag://data:all"], map=word_map, reduce=sum_reduce)
    assert dict(result_iterator(wait(job))) == dict(want)
    ddfs.put("data:secret", [["tag://data:plain:2"]], token="secret")  # read token too
    job = Job(master=url).run(input=["tag://secret@/data:secret"], map=word_map)
    assert sorted(result_iterator(wait(job))) == [(b"c", 1), (b"d", 1)]
    # without the token the tag cannot be read: Job.run raises before submitting
    with pytest.raises(CommError) as info:
        Job(master=url).run(input=["tag://data:secret"], map=word_map)
    assert info.value.code == 401
    # records of chunked blobs are read with chain_reader
    from disco.worker.task_io import chain_reader

    job = Job(master=url).run(input=["tag://data:chunked"], map=word_map, map_reader=chain_reader)
    assert sorted(result_iterator(wait(job))) == [("a", 1), ("z", 1)]


def test_tag_inputs_are_expanded_on_the_jobs_master(master, monkeypatch) -> None:
    push_texts(master.url, {"t": b"q\n"}, "data:here")
    monkeypatch.setenv("DISCO_MASTER", "http://127.0.0.1:9")  # not the job's master
    job = Job(master=master.url).run(input=["tag://data:here"], map=word_map)
    assert list(result_iterator(wait(job), ddfs=master.url)) == [(b"q", 1)]


# -- the disco oob / pstats commands (library.md 18) ------------------------------------------
def test_disco_oob_and_pstats_commands(master, capsys) -> None:
    from disco.cli.disco import main as disco_main

    job = Job(master=master.url).run(
        input=["raw://a", "raw://b"], map=oob_map, reduce=count_reduce, profile=True
    )
    wait(job)
    capsys.readouterr()
    assert disco_main(["-M", master.url, "oob", job.name]) == 0
    keys = capsys.readouterr().out.split()
    assert {"line-a", "line-b"} <= set(keys)
    assert sum(k.startswith("profile-map:") for k in keys) == 2
    assert disco_main(["-M", master.url, "oob", "get", "line-b", "@"]) == 0  # @: last job
    assert capsys.readouterr().out == "B"
    assert disco_main(["-M", master.url, "pstats", "-k", "calls", "-k", "time", job.name]) == 0
    text = capsys.readouterr().out
    assert "function calls" in text and "oob_map" in text
    assert "Ordered by: call count, internal time" in text
    assert disco_main(["-M", master.url, "oob", "get", "line-a"]) == 1
    assert "usage: disco oob get key jobname" in capsys.readouterr().err


def test_oob_values_are_read_across_nodes(tmp_path) -> None:
    """Twelve map tasks on three nodes put values whose blobs land on random nodes; the
    reduce task reads every one, from its own node as a file or from the others over
    HTTP (all twelve on one node: probability 3 / 3**12)."""
    nodes = [("localhost", 2), ("127.0.0.2", 2), ("127.0.0.3", 2)]
    before = child_pids()
    with embedded(tmp_path / "c", nodes=nodes) as m:
        letters = "abcdefghijkl"
        job = Job(master=m.url).run(
            input=["raw://%s" % c for c in letters], map=oob_map, reduce=oob_reduce
        )
        got = dict(result_iterator(wait(job)))
        assert got == {**{c: c.upper().encode() for c in letters}, "missing": None}
        urls = DDFS(m.url).urls("disco:job:oob:%s" % job.name)
        hosts = {u[0].split("/")[2] for u in urls}
        assert len(urls) == 12 and len(hosts) > 1  # the values are spread over the nodes
    _assert_no_leaked_workers(before)


def load_other_jobs_oob(line, params):
    from disco.util import load_oob

    # a plain client call inside a task: it finds the task's master and ports
    yield line, load_oob(this_master(), params, "line-%s" % line)  # noqa: F821


def test_a_later_job_reads_oob_values_with_load_oob(master) -> None:
    first = Job(master=master.url).run(input=["raw://a", "raw://b"], map=oob_map)
    wait(first)
    later = Job(master=master.url).run(
        input=["raw://a", "raw://b", "raw://c"], map=load_other_jobs_oob, params=first.name
    )
    assert sorted(result_iterator(wait(later))) == [("a", b"A"), ("b", b"B"), ("c", None)]


def test_pipeline_jobs_are_profiled_per_stage(master) -> None:
    from disco.worker.pipeline.worker import Stage, Worker
    from tests.worker import pipefuncs as f

    pipeline = [
        ("split", Stage("map", process=f.hash_words)),
        ("group_label", Stage("sum.up", process=f.sum_combined, combine=True)),
    ]
    job = Job(master=master.url, worker=Worker()).run(
        input=["raw://a b a"], pipeline=pipeline, profile=True
    )
    assert dict(result_iterator(wait(job))) == {"a": 2, "b": 1}
    keys = master.disco.oob_list(job.name)
    assert any(k.startswith("profile-map:") for k in keys)
    assert any(k.startswith("profile-sum_up:") for k in keys)  # made a valid key
    names = {func[2] for func in master.disco.profile_stats(job.name, mode="sum_up").stats}
    assert "sum_combined" in names and "hash_words" not in names


def test_disco_run_save_then_wait_and_ddfs_xcat(master, capsys, tmp_path, monkeypatch) -> None:
    """The tutorial's shell pipeline: ``disco run --save``, ``disco wait @`` prints the
    results tag, ``ddfs xcat`` reads it."""
    import sys
    import textwrap

    from disco.cli.ddfs import main as ddfs_main
    from disco.cli.disco import main as disco_main

    home = tmp_path / "jobs"
    home.mkdir()
    (home / "cli_saved_job.py").write_text(
        textwrap.dedent(
            """
            from disco.job import Job

            class Shout(Job):
                partitions = None

                @staticmethod
                def map(line, params):
                    yield line.upper(), 1
            """
        )
    )
    monkeypatch.chdir(home)
    monkeypatch.syspath_prepend(str(home))
    try:
        args = ["-M", master.url, "run", "--save", "True", "cli_saved_job.Shout", "raw://hey"]
        assert disco_main(args) == 0
        name = capsys.readouterr().out.strip()
        assert disco_main(["-M", master.url, "wait", "@"]) == 0
        assert capsys.readouterr().out == "tag://disco:results:%s\n" % name
        assert ddfs_main(["-M", master.url, "xcat", "tag://disco:results:%s" % name]) == 0
        assert capsys.readouterr().out == "HEY\t1\n"
    finally:
        sys.modules.pop("cli_saved_job", None)
