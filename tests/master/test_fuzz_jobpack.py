"""Fuzzing the job pack decoder (issue 8.5): any bytes give a ``JobSpec`` or a
``JobPackError``, never another exception (which the master would answer with 500)."""

from __future__ import annotations

import json
import struct

from hypothesis import given
from hypothesis import strategies as st

from disco.master import jobpack
from disco.master.jobpack import JobPackError
from tests.fuzzing import FUZZ, json_values

from .packs import make_pack, v1_dict, v2_dict


def decodes_or_refuses(data: bytes) -> None:
    try:
        spec = jobpack.decode(data)
    except JobPackError as exc:
        assert exc.reason and len(exc.reason) < 2000
        return
    assert isinstance(spec, jobpack.JobSpec)
    assert spec.prefix and "/" not in spec.prefix and "." not in spec.prefix
    for stage in spec.pipeline:
        assert stage.name.isprintable() and len(stage.name.encode()) <= 128


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data):
    decodes_or_refuses(data)


@FUZZ
@given(st.binary(min_size=128, max_size=128), st.binary(max_size=300))
def test_valid_magic_random_offsets(header, rest):
    version = struct.pack("!I", 0xD5C00000 | (header[3] % 4))
    decodes_or_refuses(version + header[4:] + rest)


PACK = make_pack(v2_dict([["map", "split", False]], [[0, 1, ["raw://x"]]]))


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(PACK) - 1), st.integers(0, 255)), max_size=8))
def test_mutated_valid_pack(edits):
    data = bytearray(PACK)
    for pos, byte in edits:
        data[pos] = byte
    decodes_or_refuses(bytes(data))


@FUZZ
@given(
    st.sampled_from([1, 2, 3]),
    st.dictionaries(
        st.sampled_from(
            [
                "prefix",
                "owner",
                "worker",
                "scheduler",
                "pipeline",
                "inputs",
                "input",
                "nr_reduces",
                "map?",
                "reduce?",
                "save_results",
                "save_info",
                "x",
            ]
        ),
        json_values,
    ),
    json_values,
)
def test_random_jobdicts(version, overrides, jobenvs):
    base = (
        v2_dict([["map", "split", False]], [[0, 1, ["raw://x"]]])
        if version != 1
        else v1_dict(["raw://x"])
    )
    base.update(overrides)
    try:
        json.dumps(base).encode()
        json.dumps(jobenvs).encode()
    except (UnicodeEncodeError, ValueError, RecursionError):
        return  # not sendable as JSON by any client
    decodes_or_refuses(
        make_pack(base, jobenvs if isinstance(jobenvs, dict) else None, version=version)
    )


@FUZZ
@given(st.lists(st.tuples(json_values, json_values, json_values), max_size=4))
def test_random_pipelines(rows):
    decodes_or_refuses(make_pack(v2_dict([list(r) for r in rows], [])))
