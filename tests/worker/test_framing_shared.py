"""The worker protocol's frames are written once (``disco.framing``) and both sides use
that codec: the worker's requests and replies, the node's parser and encoder (issue 13).
The bytes on the wire are the ones of before."""

from __future__ import annotations

import io
import os

import pytest

from disco import framing
from disco.node import protocol as node_protocol
from disco.worker import ProtocolError, Worker, protocol


class Channel(Worker):
    """A worker whose requests go to a buffer and whose replies come from a pipe."""

    stderr = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")


def test_both_sides_use_one_codec() -> None:
    assert node_protocol.FrameParser is framing.FrameParser
    assert node_protocol.FramingError is framing.FramingError
    assert node_protocol.SUPPORTED_VERSION == framing.PROTOCOL_VERSION
    assert protocol.FrameParser is framing.FrameParser


def test_worker_requests_are_the_bytes_of_before_and_parse_on_the_node_side(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    read, write = os.pipe()
    monkeypatch.setattr(protocol, "_reader", protocol._ReplyReader(read))
    os.write(write, node_protocol.encode("OK", "ok"))
    assert Channel.exchange("WORKER", {"pid": 7, "version": "1.1"}) == ("OK", "ok")
    os.write(write, node_protocol.encode("INPUT", ["done", [[0, "ok", 0, [[0, "raw://é"]]]]]))
    assert Channel.send("INPUT", ["exclude", []]) == ["done", [[0, "ok", 0, [[0, "raw://é"]]]]]
    sent = Channel.stderr.buffer.getvalue()  # type: ignore[attr-defined]
    # json.dumps with its default separators, as before the split: the same bytes.
    assert sent == (b'WORKER 28 {"pid": 7, "version": "1.1"}\nINPUT 15 ["exclude", []]\n')
    parser = node_protocol.FrameParser()
    parser.feed(sent)
    frames = [parser.next_frame(), parser.next_frame()]
    assert [node_protocol.decode_message(f) for f in frames if f is not None] == [
        node_protocol.WorkerHello("1.1", 7),
        node_protocol.InputRequest("exclude", ()),
    ]
    os.close(read)
    os.close(write)


def test_a_broken_reply_is_a_protocol_error() -> None:
    read, write = os.pipe()
    os.write(write, b"OK 3 abcd")
    with pytest.raises(ProtocolError, match="invalid_body"):
        protocol._ReplyReader(read).read(5)
    os.write(write, b"OK 2 ab\n")
    with pytest.raises(ProtocolError, match="not JSON"):
        protocol._ReplyReader(read).read(5)
    os.close(write)
    with pytest.raises(ProtocolError, match="closed"):
        protocol._ReplyReader(read).read(5)
    os.close(read)


def _frames(chunks: list[bytes], max_payload: int = 1000) -> list[object]:
    parser = framing.FrameParser(max_payload=max_payload)
    out: list[object] = []
    for chunk in chunks:
        parser.feed(chunk)
        while True:
            try:
                frame = parser.next_frame()
            except framing.FramingError as exc:
                out.append(("error", exc.reason))
                return out
            if frame is None:
                out.append(None)
                break
            out.append((frame.type, frame.payload))
    return out


def test_the_length_is_read_whole_or_a_digit_at_a_time_with_the_same_answers() -> None:
    """The LENGTH of a whole frame is parsed in one go; a partial, long (24+ digits,
    leading zeros) or broken one a digit at a time: the same frames and errors."""
    assert _frames([b"MSG 3 abc\nOK 3 ", b'"a"\n']) == [("MSG", b"abc"), None, ("OK", b'"a"'), None]
    assert _frames([b"MSG 1", b"2", b" " + b"x" * 12 + b"\n"]) == [
        None,
        None,
        ("MSG", b"x" * 12),
        None,
    ]
    assert _frames([b"MSG " + b"0" * 30 + b"3 abc\n"]) == [("MSG", b"abc"), None]
    assert _frames([b"MSG 1001 "]) == [("error", "message_too_big")]
    assert _frames([b"MSG 1001"]) == [("error", "message_too_big")]  # before its space
    assert _frames([b"MSG 12x "]) == [("error", "invalid_length")]
    assert _frames([b"MSG  3 abc\n"]) == [("error", "invalid_length")]
    assert _frames([b"MSG 3 abcd\n"]) == [("error", "invalid_body")]
