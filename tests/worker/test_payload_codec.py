"""The worker protocol's payloads (master-api.md 8.2: JSON) are written and read without
``json``'s per-call encoder objects (``disco.worker.payload.dump_payload`` and
``load_payload``): the same bytes as ``json.dumps``, the same values and errors as
``json.loads``."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disco.worker.payload import dump_payload, load_payload
from disco.worker.protocol import ProtocolError, _ReplyReader

scalars = st.one_of(
    st.text(),
    st.integers(),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True),
)
payloads = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.one_of(st.text(), st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)


@given(payloads)
def test_dump_payload_is_json_dumps(payload):
    assert dump_payload(payload) == json.dumps(payload).encode("utf-8")


@pytest.mark.parametrize(
    "payload",
    [
        "",
        "Results sent to master",
        {"pid": 123, "version": "1.1"},
        ["exclude", []],
        [0, "/data/x/y/map-0-out", 62],
        ["exclude", [1, 2, 3]],
        'h\u00e9llo\n"q" \U0001f600',
    ],
)
def test_the_task_messages_take_the_fast_path(payload, monkeypatch):
    monkeypatch.setattr(json, "dumps", None)  # not called
    assert dump_payload(payload) == json.JSONEncoder().encode(payload).encode()


@given(payloads)
def test_load_payload_is_json_loads(payload):
    data = json.dumps(payload).encode()
    got, want = load_payload(data), json.loads(data.decode())
    assert repr(got) == repr(want)  # (NaN != NaN)


@pytest.mark.parametrize(
    "data", [b" 1", b"1 ", b"[1,\n2]", b"", b"nul", b"[1] x", b"\xff", b'"\\ud800"', b"{}"]
)
def test_load_payload_odd_bytes_as_json_loads(data):
    try:
        want: object = json.loads(data.decode("utf-8"))
    except ValueError as e:
        want = type(e)
    try:
        got: object = load_payload(data)
    except ValueError as e:
        got = type(e)
    assert got == want


def test_a_reply_that_is_not_json_is_a_protocol_error():
    import os

    r, w = os.pipe()
    try:
        reader = _ReplyReader(r)
        os.write(w, b"OK 3 [1,\n")
        with pytest.raises(ProtocolError, match="not JSON"):
            reader.read(5)
        os.write(w, b"OK 2 \xff\xfe\n")
        with pytest.raises(ProtocolError, match="not JSON"):
            reader.read(5)
    finally:
        os.close(r)
        os.close(w)
