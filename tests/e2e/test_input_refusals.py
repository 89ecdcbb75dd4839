"""Jobs over nothing are refused at submit (issue 12.2): no input at all, or a ``tag://``
input whose tag does not exist.  The library refuses before it submits; the master
refuses such job packs from any client."""

from __future__ import annotations

import json
import urllib.request

import pytest

from disco.core import Job, result_iterator
from disco.ddfs import DDFS
from disco.error import DiscoError
from tests.master.packs import make_pack, v1_dict, v2_dict


def word_map(line, params):
    for word in line.split():
        yield word, 1


def _submit_raw(master, pack: bytes) -> list:
    req = urllib.request.Request(master.url + "/disco/job/new", data=pack)
    with urllib.request.urlopen(req, timeout=30) as reply:
        return json.loads(reply.read())


def _joblist(master) -> list:
    return master.disco.joblist()


# -- library ------------------------------------------------------------------------------
def test_job_over_a_missing_tag_is_refused_by_the_library(master) -> None:
    with pytest.raises(DiscoError) as info:
        Job(master=master.url).run(input=["tag://data:nosuch"], map=word_map)
    assert str(info.value) == "Job input tag://data:nosuch: no such tag in DDFS at %s" % master.url
    # a bare word is a tag name (0.5): the message says how to name a file
    with pytest.raises(DiscoError, match="a file needs file:///absolute/path"):
        Job(master=master.url).run(input=["words"], map=word_map)
    assert _joblist(master) == []


def test_job_without_input_is_refused_by_the_library(master) -> None:
    with pytest.raises(DiscoError, match="^The job has no input: give input="):
        Job(master=master.url).run(input=[], map=word_map)
    with pytest.raises(DiscoError, match="^The job has no input"):
        Job(master=master.url).run(map=word_map)  # no input argument at all
    assert _joblist(master) == []


def test_job_over_an_empty_tag_is_refused_and_a_full_one_runs(master) -> None:
    ddfs = DDFS(master.url)
    ddfs.put("data:empty", [])
    with pytest.raises(DiscoError, match="hold no data"):
        Job(master=master.url).run(input=["tag://data:empty"], map=word_map)
    ddfs.chunk("data:words", [["raw://a b a"]])
    from disco.worker.task_io import chain_reader

    job = Job(master=master.url).run(
        input=["tag://data:words"], map=word_map, map_reader=chain_reader
    )
    assert sorted(result_iterator(job.wait())) == [("a", 1), ("a", 1), ("b", 1)]


# -- master -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "jobdict,version",
    [
        (v2_dict([["map", "split", False]], []), 2),
        (v2_dict([["map", "split", False]], [[0, 0, []]]), 2),  # an input of no replicas
        (v2_dict([], []), 2),
        (v1_dict([]), 1),
    ],
)
def test_master_refuses_a_job_pack_without_inputs(master, jobdict, version) -> None:
    reply = _submit_raw(master, make_pack(jobdict, version=version))
    assert reply == [
        "error",
        'Job failed to start: "the job has no inputs: give at least one input URL"',
    ]
    assert _joblist(master) == []


def test_master_refuses_a_job_pack_over_a_missing_tag(master) -> None:
    DDFS(master.url).put("data:here", [["raw://x"]])
    inputs = [[0, 0, ["tag://data:here"]], [0, 0, ["tag://data:gone"]], [0, 0, ["tag://t@/x:y"]]]
    reply = _submit_raw(master, make_pack(v2_dict([["map", "split", False]], inputs)))
    assert reply == [
        "error",
        'Job failed to start: "no such tag in DDFS: tag://data:gone, tag://x:y"',
    ]
    # an existing tag, and a tag of another DDFS (it has a host), are accepted
    inputs = [[0, 0, ["tag://data:here"]], [0, 0, ["tag://elsewhere/data:there"]]]
    reply = _submit_raw(master, make_pack(v2_dict([], inputs)))
    assert reply[0] == "ok", reply
