"""Every ``Disco`` method of the seed against a real embedded master (library.md 2)."""

from __future__ import annotations

import json
import os
import time

import pytest

from disco.core import Disco, result_iterator
from disco.error import CommError, DiscoError, JobError
from tests.client.shjobs import BLOCKING_WORKER, jobpack
from tests.conftest import poll_for

UNKNOWN = "Nobody@1:2:3"


def test_master_and_cluster_queries(master) -> None:
    disco: Disco = master.disco
    assert repr(disco) == "Disco master at %s" % master.url
    assert isinstance(disco.master_version(), str) and disco.master_version()
    assert disco.joblist() == []
    info = disco.nodeinfo()
    assert list(info) == ["localhost"]
    assert {"job_ok", "data_error", "error", "max_workers", "connected", "blacklisted"} <= set(
        info["localhost"]
    )

    disco.config = [["localhost", "3"]]
    assert disco.config == [["localhost", "3"]]
    assert disco.nodeinfo()["localhost"]["max_workers"] == 3

    disco.blacklist("localhost")
    assert disco.nodeinfo()["localhost"]["blacklisted"] is True
    disco.whitelist("localhost")
    assert disco.nodeinfo()["localhost"]["blacklisted"] is False


def test_submit_wait_results_jobinfo_jobpack(master) -> None:
    disco: Disco = master.disco
    name = disco.submit(jobpack(inputs=["raw://a", ["raw://b", "raw://c"]], prefix="Plain"))
    assert name.startswith("Plain@")
    results = disco.wait(name, poll_interval=0.1)
    assert results == [["raw://a"], ["raw://b", "raw://c"]]
    assert disco.results(name) == ("ready", results)
    assert disco.joblist()[0][1:] == ["ready", name]

    info = disco.jobinfo(name)
    assert info["active"] == "ready"
    assert info["owner"] == "tester@test"
    assert info["results"] == ["raw://a", "raw://b", "raw://c"]

    pack = disco.jobpack(name)
    assert pack.jobdict["prefix"] == "Plain"
    assert pack.jobdict["worker"] == "bin/worker.sh"

    with pytest.raises(DiscoError, match="Failed to submit jobpack"):
        disco.submit(b"not a job pack at all" * 10)


def test_results_for_many_jobs(master) -> None:
    disco: Disco = master.disco
    done = disco.submit(jobpack(inputs=["raw://x"]))
    disco.wait(done, poll_interval=0.1)
    running = disco.submit(jobpack(BLOCKING_WORKER, map=True))
    others, active = disco.results([done, running, UNKNOWN], timeout=50)
    assert others == [(done, ("ready", [["raw://x"]])), (UNKNOWN, ("unknown job", []))]
    assert active == [(running, ("active", []))]
    # the pairs returned before can be passed back in
    others2, active2 = disco.results(active, timeout=0)
    assert (others2, active2) == ([], active)
    disco.kill(running)
    assert disco.results(running)[0] == "dead"


def test_wait_timeout_kill_and_dead_status(master) -> None:
    disco: Disco = master.disco
    name = disco.submit(jobpack(BLOCKING_WORKER, map=True))
    poll_for(lambda: disco.jobinfo(name)["hosts"], 10, "the task to run")
    assert name in disco.nodeinfo()["localhost"].get("tasks", [])
    start = time.monotonic()
    with pytest.raises(JobError) as info:
        disco.wait(name, poll_interval=0.1, timeout=0.3, clean=True)
    assert info.value.message == "Timeout"
    assert str(info.value) == "Job %s failed: Timeout" % name
    assert time.monotonic() - start < 20  # the task blocks forever (generous margin)
    assert disco.results(name, timeout=0)[0] == "active"  # clean=True does nothing before the end
    disco.kill(name)
    with pytest.raises(JobError, match="Status dead"):
        disco.wait(name, poll_interval=0.1)
    with pytest.raises(JobError, match="Status unknown job"):
        disco.wait(UNKNOWN, poll_interval=0.1)


def test_stage_outputs_events_and_result_iterator(master) -> None:
    disco: Disco = master.disco
    name = disco.submit(jobpack(inputs=["raw://one", "raw://two"], map=True))
    results = disco.wait(name, poll_interval=0.1)
    assert len(results) == 1 and results[0][0].startswith("dir://")
    maps = disco.stageresults(name, "map")
    assert len(maps) == 2 and all(r[0].startswith("dir://") for r in maps)
    assert list(result_iterator(maps, reader=None)) == [b"hello map\n", b"hello map\n"]
    assert list(disco.result_iterator(results, reader=None)) == [b"hello map_shuffle\n"]
    seen = []
    assert list(result_iterator(maps, reader=None, notifier=seen.append))
    assert len(seen) == 2

    events = list(disco.events(name))
    messages = [event[2] for _, event in events]
    assert messages[0] == "New job initialized!"
    assert "MSG: [map:0] hello from map" in messages
    assert messages[-1].startswith("READY: Job done in")
    raw = disco.rawevents(name)
    assert [o for o, _ in events][-1] == len(raw.encode("utf-8"))
    # resuming from an offset gives the rest only
    middle = events[2][0]
    assert list(disco.events(name, offset=middle)) == events[3:]
    assert disco.rawevents(name, offset=middle) == raw.encode()[middle:].decode()


def test_wait_show_json_prints_events(master, capsys) -> None:
    disco: Disco = master.disco
    name = disco.submit(jobpack(inputs=["raw://one"], map=True))
    disco.wait(name, poll_interval=0.1, show="json")
    out, _ = capsys.readouterr()
    events = [json.loads(line) for line in out.splitlines()]
    assert events[0][2] == "New job initialized!"
    assert events[-1][2].startswith("READY")


def test_wait_uses_disco_events_setting(master, capsys) -> None:
    disco = Disco(master.url, settings=master.disco.settings.__class__(DISCO_EVENTS="nocolor"))
    name = disco.submit(jobpack(inputs=["raw://one"]))
    disco.wait(name, poll_interval=0.1)
    out, err = capsys.readouterr()
    assert out == ""
    assert 'master Created job "%s"' % name in err
    assert "READY: Job done" in err


def test_clean_and_purge(master) -> None:
    disco: Disco = master.disco
    name = disco.submit(jobpack(inputs=["raw://x"]))
    disco.wait(name, poll_interval=0.1, clean=True)  # cleaned once it finished
    assert disco.results(name) == ("unknown job", [])
    with pytest.raises(CommError) as info:
        disco.jobinfo(name)
    assert info.value.code == 404

    name = disco.submit(jobpack(inputs=["raw://x"]))
    disco.wait(name, poll_interval=0.1)
    disco.purge(name)
    assert disco.results(name)[0] == "unknown job"
    assert name not in [job[2] for job in disco.joblist()]
    disco.kill(UNKNOWN)  # harmless
    disco.clean(UNKNOWN)


def test_oob_and_profile_of_an_unknown_job(master) -> None:
    disco: Disco = master.disco
    with pytest.raises(DiscoError, match="Unknown key or jobname"):
        disco.oob_get("J@1:2:3", "key")
    for call in (lambda: disco.oob_list("J@1:2:3"), lambda: disco.profile_stats("J@1:2:3")):
        with pytest.raises(CommError) as info:
            call()
        assert info.value.code == 404


def test_new_job_runs_a_classic_job(master) -> None:
    def fun_map(line, params):
        return [(line.upper(), 1)]

    job = master.disco.new_job("NewJob", input=["raw://abc"], map=fun_map)
    assert job.name.startswith("NewJob@")
    assert sorted(result_iterator(job.wait(poll_interval=0.1))) == [("ABC", 1)]


def test_master_from_settings(master) -> None:
    assert Disco().master == os.environ["DISCO_MASTER"] == master.url
    assert Disco().joblist() == []
