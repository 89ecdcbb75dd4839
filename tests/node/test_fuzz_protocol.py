"""Fuzzing the worker protocol parser (issue 8.5): any byte stream, cut anywhere, gives
frames, ``FramingError`` or ``InvalidMessage``, never another exception."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from disco.node.protocol import (
    FrameParser,
    FramingError,
    InvalidMessage,
    decode_message,
    encode,
)
from tests.fuzzing import FUZZ, json_values

TYPES = ["WORKER", "TASK", "INPUT", "INPUT_ERR", "MSG", "OUTPUT", "DONE", "ERROR", "FATAL", "PING"]


def parse_all(chunks: list[bytes]) -> list:
    parser = FrameParser(max_payload=4096)
    messages = []
    for chunk in chunks:
        parser.feed(chunk)
        while True:
            try:
                frame = parser.next_frame()
            except FramingError as exc:
                assert exc.reason in (
                    "invalid_type",
                    "invalid_length",
                    "message_too_big",
                    "invalid_body",
                )
                return messages
            if frame is None:
                break
            try:
                messages.append(decode_message(frame))
            except InvalidMessage as exc:
                assert str(exc)
                messages.append(exc)
    return messages


def cut(data: bytes, points: list[int]) -> list[bytes]:
    points = sorted({p % (len(data) + 1) for p in points})
    edges = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:], strict=False)]


@FUZZ
@given(st.binary(max_size=400), st.lists(st.integers(0, 1000), max_size=6))
def test_random_bytes(data, points):
    parse_all(cut(data, points))


@FUZZ
@given(
    st.lists(st.tuples(st.sampled_from(TYPES + ["X", "BAD TYPE"]), json_values), max_size=5),
    st.lists(st.integers(0, 5000), max_size=6),
)
def test_well_framed_random_payloads(messages, points):
    stream = b""
    for mtype, payload in messages:
        try:
            body = json.dumps(payload).encode("utf-8")
        except (UnicodeEncodeError, ValueError):
            body = b'"\\ud800"'
        stream += b"%s %d %s\n" % (mtype.encode(), len(body), body)
    parse_all(cut(stream, points))


@FUZZ
@given(st.sampled_from(["TASK", "OK", "INPUT", "RETRY", "FAIL"]), json_values)
def test_encoded_messages_parse_back(mtype, payload):
    try:
        data = encode(mtype, payload)
    except (UnicodeEncodeError, ValueError):
        return  # lone surrogates are not encodable; the master never sends them
    parser = FrameParser(max_payload=1 << 20)
    parser.feed(data)
    frame = parser.next_frame()
    assert frame is not None and frame.type == mtype
    assert json.loads(frame.payload) == json.loads(json.dumps(payload))
    assert parser.next_frame() is None


def test_deep_json_payload_is_an_invalid_message():
    body = b"[" * 2000 + b"]" * 2000
    messages = parse_all([b"OUTPUT %d %s\n" % (len(body), body)])
    assert len(messages) == 1 and isinstance(messages[0], InvalidMessage)
