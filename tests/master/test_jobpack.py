"""Job pack decoding and validation: every error text of master-api.md 2.2 and 6."""

from __future__ import annotations

import struct

import pytest

from disco.master import jobpack
from disco.master.jobpack import DataInput, DirInput, JobPackError, StageSpec

from .packs import make_pack, v1_dict, v2_dict


def reason(data: bytes) -> str:
    with pytest.raises(JobPackError) as info:
        jobpack.decode(data)
    return info.value.reason


def good_v2(**extra: object) -> dict:
    return v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]], **extra)


def test_valid_v2_pack():
    spec = jobpack.decode(make_pack(good_v2(), {"A": "b"}))
    assert spec.version == 2
    assert spec.pipeline == (StageSpec("map", "split", False),)
    assert spec.inputs == (DataInput(0, 0, ("raw://a",)),)
    assert spec.jobenvs == {"A": "b"}
    assert spec.max_cores == 2**31 and spec.save_results is False


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d[:100],  # short
        lambda d: b"\x00" + d[1:],  # bad magic
        lambda d: d[:4] + struct.pack("!I", 64) + d[8:],  # dict offset not 128
        lambda d: d[:8] + struct.pack("!I", 128) + d[12:],  # envs offset == dict offset
        lambda d: d[:16] + struct.pack("!I", len(d) + 10) + d[20:],  # data past the end
        lambda d: d[:12] + struct.pack("!I", 129) + d[16:],  # home before envs
    ],
)
def test_invalid_header(mutate):
    assert reason(mutate(make_pack(good_v2()))) == '"invalid header"'


@pytest.mark.parametrize("key", ["prefix", "worker", "owner", "scheduler", "pipeline", "inputs"])
def test_missing_key_v2(key):
    jobdict = good_v2()
    del jobdict[key]
    assert reason(make_pack(jobdict)) == "\"jobpack missing key '%s'\"" % key


@pytest.mark.parametrize("key", ["input", "nr_reduces"])
def test_missing_key_v1(key):
    jobdict = v1_dict(["raw://a"])
    del jobdict[key]
    assert "missing key '%s'" % key in reason(make_pack(jobdict, version=1))


@pytest.mark.parametrize("prefix", ["a/b", "a.b", "a b", "", "é"])
def test_invalid_prefix(prefix):
    assert reason(make_pack(good_v2(prefix=prefix))) == '"invalid prefix"'


def test_unsupported_version():
    assert reason(make_pack(good_v2(), version=3)) == "\"unsupported version '3'\""


def test_invalid_grouping():
    jobdict = v2_dict([["map", "foo", False]], [])
    assert reason(make_pack(jobdict)) == '"invalid grouping \'<<\\"foo\\">>\'"'


@pytest.mark.parametrize("row", [["map", "split"], ["map", "split", "no"], [1, "split", False]])
def test_invalid_pipeline(row):
    assert "Invalid job pipeline" in reason(make_pack(v2_dict([row], [])))


def test_input_stage_name_refused():
    assert "Invalid job pipeline" in reason(make_pack(v2_dict([["input", "split", False]], [])))


def test_repeated_stages():
    jobdict = v2_dict([["a", "split", False], ["a", "group_all", False]], [])
    assert reason(make_pack(jobdict)) == "repeated_pipeline_stages"


@pytest.mark.parametrize("inputs", ["raw://a", [[0, 0]], [["0", 0, ["raw://a"]]], [[0, 0, [1]]]])
def test_invalid_inputs(inputs):
    assert reason(make_pack(v2_dict([], inputs))) == "invalid_job_inputs"


def test_bare_string_input_row_accepted():
    spec = jobpack.decode(make_pack(v2_dict([], [[3, 7, "raw://x"]])))
    assert spec.inputs == (DataInput(3, 7, ("raw://x",)),)


@pytest.mark.parametrize("info", ["dd", "xfs", 4])
def test_invalid_save_info(info):
    assert reason(make_pack(good_v2(save_info=info))) == "invalid_job_save_info"


def test_invalid_save_results():
    assert reason(make_pack(good_v2(save_results="yes"))) == "invalid_job_save_results"


def test_invalid_payload():
    data = make_pack(good_v2())
    broken = data.replace(b'"prefix"', b"'prefix'")
    assert reason(broken).startswith('"invalid payload: ')
    assert reason(make_pack(good_v2(), {"A": 1})).startswith('"invalid payload: ')
    assert reason(make_pack(good_v2(), ["x"])).startswith('"invalid payload: ')  # type: ignore[arg-type]
    assert reason(make_pack(good_v2(scheduler=[]))).startswith('"invalid payload: ')


@pytest.mark.parametrize(
    "flags, pipeline",
    [
        ((False, False, False, 1), []),
        ((False, True, False, 1), ["reduce:group_all"]),
        ((False, True, True, 2), ["reduce:group_label", "reduce_shuffle:group_node"]),
        ((False, True, False, "2"), ["reduce:group_label"]),
        ((True, False, True, 1), ["map:split", "map_shuffle:group_node"]),
        ((True, True, False, 1), ["map:split", "map_shuffle:group_node", "reduce:group_all"]),
        (
            (True, True, True, 3),
            [
                "map:split",
                "map_shuffle:group_node",
                "reduce:group_label",
                "reduce_shuffle:group_node",
            ],
        ),
        ((True, True, False, 3), ["map:split", "map_shuffle:group_node", "reduce:group_label"]),
    ],
)
def test_v1_translation(flags, pipeline):
    m, r, rs, n = flags
    jobdict = v1_dict(
        ["raw://a", ["http://h/x", "http://g/x"], "dir://h1/disco/h1/aa/j/.disco/x.results"],
        **{"map?": m, "reduce?": r, "reduce_shuffle?": rs, "nr_reduces": n},
    )
    spec = jobpack.decode(make_pack(jobdict, version=1))
    assert ["%s:%s" % (s.name, s.grouping) for s in spec.pipeline] == pipeline
    assert not any(s.concurrent for s in spec.pipeline)
    assert spec.inputs == (
        DataInput(0, 0, ("raw://a",)),
        DataInput(0, 0, ("http://h/x", "http://g/x")),
        DirInput("dir://h1/disco/h1/aa/j/.disco/x.results"),
    )
