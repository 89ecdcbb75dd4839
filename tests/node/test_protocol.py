"""The worker protocol framing, payload shapes and MSG rate limit (master-api.md 8.2, 8.3, 8.9)."""

from __future__ import annotations

import pytest

from disco.node import protocol as p


def frames(data: bytes, *, max_payload: int = p.MAX_PAYLOAD) -> list[p.Frame]:
    parser = p.FrameParser(max_payload)
    parser.feed(data)
    out = []
    while (frame := parser.next_frame()) is not None:
        out.append(frame)
    return out


def broken(data: bytes, *, max_payload: int = p.MAX_PAYLOAD) -> p.FramingError:
    with pytest.raises(p.FramingError) as info:
        frames(data, max_payload=max_payload)
    return info.value


# -- framing -------------------------------------------------------------------------------


def test_parses_several_messages_in_one_chunk():
    data = b'WORKER 26 {"version":"1.1","pid":42}\nTASK 2 ""\nMSG 5 "hi!"\n'
    assert frames(data) == [
        p.Frame("WORKER", b'{"version":"1.1","pid":42}'),
        p.Frame("TASK", b'""'),
        p.Frame("MSG", b'"hi!"'),
    ]


def test_parses_byte_by_byte():
    data = b'OUTPUT 14 [0,"a/b",1234]\nDONE 2 ""\n'
    parser = p.FrameParser()
    got = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        while (frame := parser.next_frame()) is not None:
            got.append(frame)
        complete = i + 1 in (len(b'OUTPUT 14 [0,"a/b",1234]\n'), len(data))
        assert parser.in_message is not complete
    assert got == [p.Frame("OUTPUT", b'[0,"a/b",1234]'), p.Frame("DONE", b'""')]
    assert parser.unparsed == b""


def test_payload_may_contain_newlines_and_spaces():
    body = b'"a\nb c"'
    assert frames(b"MSG 7 " + body + b"\n") == [p.Frame("MSG", body)]


def test_incomplete_message_waits_for_more():
    parser = p.FrameParser()
    parser.feed(b'MSG 10 "abc')
    assert parser.next_frame() is None
    assert parser.in_message
    assert parser.unparsed == b'MSG 10 "abc'


def test_nine_byte_type_is_fine_but_ten_bytes_without_space_is_invalid_type():
    assert frames(b"INPUT_ERR 7 [0,[0]]\n") == [p.Frame("INPUT_ERR", b"[0,[0]]")]
    parser = p.FrameParser()
    parser.feed(b"ABCDEFGHI")  # 9 bytes, no space yet: still waiting
    assert parser.next_frame() is None
    parser.feed(b"J")
    with pytest.raises(p.FramingError) as info:
        parser.next_frame()
    assert info.value.reason == "invalid_type"
    assert str(info.value) == "Could not parse worker event: invalid_type"


def test_traceback_is_not_a_message():
    err = broken(b"Traceback (most recent call last):\n  File ...")
    assert err.reason == "invalid_length"
    assert err.unparsed.startswith(b"Traceback (most")


@pytest.mark.parametrize(
    "data, reason",
    [
        (b' 2 ""\n', "invalid_type"),
        (b'\xff\xfe 2 ""\n', "invalid_type"),
        (b'MSG  2 ""\n', "invalid_length"),
        (b'MSG -2 ""\n', "invalid_length"),
        (b'MSG 2x ""\n', "invalid_length"),
        (b'MSG 1.5 ""\n', "invalid_length"),
        (b'MSG 2 ""X', "invalid_body"),
        (b'MSG 1 ""\n', "invalid_body"),
        (b'MSG 3 ""\nX', "invalid_body"),
    ],
)
def test_broken_streams(data, reason):
    assert broken(data).reason == reason


def test_length_limit_is_100_mib():
    limit = 100 * 1024 * 1024
    assert p.MAX_PAYLOAD == limit
    parser = p.FrameParser()
    parser.feed(b"MSG %d " % limit)  # exactly the limit: fine, waits for the payload
    assert parser.next_frame() is None
    assert broken(b"MSG %d " % (limit + 1)).reason == "message_too_big"
    # detected while the digits arrive, without waiting for the space
    assert broken(b"MSG 99999999999").reason == "message_too_big"
    assert broken(b"MSG 11 ", max_payload=10).reason == "message_too_big"


def test_broken_parser_stays_broken_and_keeps_output():
    parser = p.FrameParser()
    parser.feed(b'MSG 2 ""\nhello world')
    assert parser.next_frame() == p.Frame("MSG", b'""')
    with pytest.raises(p.FramingError):
        parser.next_frame()
    assert parser.broken and not parser.in_message
    parser.feed(b"\nmore")
    with pytest.raises(p.FramingError) as info:
        parser.next_frame()
    assert info.value.unparsed == b"hello world\nmore"


def test_encoder_is_compact_and_counts_bytes():
    assert p.encode("OK", "ok") == b'OK 4 "ok"\n'
    assert p.encode("FAIL", "") == b'FAIL 2 ""\n'
    assert p.encode("INPUT", ["done", [[0, "ok", 0, [[0, "raw://x"]]]]]) == (
        b'INPUT 37 ["done",[[0,"ok",0,[[0,"raw://x"]]]]]\n'
    )
    encoded = p.encode("MSG", "\u00e9")
    assert encoded == b'MSG 4 "\xc3\xa9"\n'
    assert frames(encoded) == [p.Frame("MSG", b'"\xc3\xa9"')]


# -- payload shapes (8.3) ------------------------------------------------------------------


def decode(mtype: str, payload: bytes) -> p.WorkerMessage:
    return p.decode_message(p.Frame(mtype, payload))


def test_valid_messages():
    assert decode("WORKER", b'{"version": "1.1", "pid": 7}') == p.WorkerHello("1.1", 7)
    assert decode("TASK", b'""') == p.TaskRequest()
    assert decode("INPUT", b'""') == p.InputRequest("all", ())
    assert decode("INPUT", b'["include", [0, 2]]') == p.InputRequest("include", (0, 2))
    assert decode("INPUT", b'["exclude", []]') == p.InputRequest("exclude", ())
    assert decode("INPUT_ERR", b"[3, [0, 1]]") == p.InputError(3, (0, 1))
    assert decode("MSG", b'"hello"') == p.Msg("hello")
    assert decode("OUTPUT", b'[1, "ab/c", 10]') == p.Output(1, "ab/c", 10)
    assert decode("DONE", b'""') == p.Done()
    assert decode("ERROR", b'"boom"') == p.Error("boom")
    assert decode("FATAL", b'"bad"') == p.Fatal("bad")
    assert decode("PING", b'""') == p.Ping()
    assert decode("PING", b"{}") == p.Ping()
    assert decode("PING", b"") == p.Ping()


@pytest.mark.parametrize(
    "mtype, payload",
    [
        ("WORKER", b'{"version": "1.1"}'),
        ("WORKER", b'{"version": "1.1", "pid": "7"}'),
        ("WORKER", b'{"version": 1.1, "pid": 7}'),
        ("WORKER", b'{"version": "1.1", "pid": true}'),
        ("WORKER", b'["1.1", 7]'),
        ("TASK", b"0"),
        ("INPUT", b'"all"'),
        ("INPUT", b'["include"]'),
        ("INPUT", b'["only", [1]]'),
        ("INPUT", b'["include", ["1"]]'),
        ("INPUT", b'["exclude", 1]'),
        ("INPUT_ERR", b"[0]"),
        ("INPUT_ERR", b'["0", [1]]'),
        ("INPUT_ERR", b"[0, [1.5]]"),
        ("MSG", b"12"),
        ("MSG", b'["x"]'),
        ("OUTPUT", b'[0, "a"]'),
        ("OUTPUT", b'["0", "a", 1]'),
        ("OUTPUT", b"[0, 5, 1]"),
        ("OUTPUT", b'[0, "a", 1.5]'),
        ("OUTPUT", b'[false, "a", 1]'),
        ("DONE", b"null"),
        ("ERROR", b"{}"),
        ("FATAL", b"[]"),
    ],
)
def test_shape_mismatch_is_invalid(mtype, payload):
    with pytest.raises(p.InvalidMessage) as info:
        decode(mtype, payload)
    assert str(info.value).startswith("Invalid payload for %s message: " % mtype)


def test_unknown_type_and_bad_json_and_version():
    with pytest.raises(p.InvalidMessage, match="^Unknown message type from worker: HELLO$"):
        decode("HELLO", b'""')
    with pytest.raises(p.InvalidMessage, match="^Invalid JSON payload in MSG message: "):
        decode("MSG", b"not json")
    with pytest.raises(p.InvalidMessage) as info:
        decode("WORKER", b'{"version": "1.0", "pid": 7}')
    assert str(info.value) == "Invalid worker version: 1.0"


# -- MSG rate limit (8.9) ------------------------------------------------------------------


def test_rate_limit_slow_above_five_fatal_at_ten():
    rate = p.MsgRateLimiter()
    verdicts = [rate.arrive(0.01 * i) for i in range(10)]
    assert [v for v, _ in verdicts] == ["ok"] * 5 + ["slow"] * 4 + ["fatal"]
    assert verdicts[-1] == ("fatal", 10)
    assert p.behaving_badly(10) == (
        "Worker is behaving badly: Sent 10 events in a second, ignoring replies."
    )


def test_rate_limit_drops_at_most_one_old_entry_per_message():
    rate = p.MsgRateLimiter()
    for i in range(5):
        assert rate.arrive(0.0 + i * 0.001)[0] == "ok"
    # two seconds later: only one stale entry goes per MSG, so the count stays at 5
    assert rate.arrive(2.0) == ("ok", 5)
    assert rate.arrive(2.1) == ("ok", 5)


def test_rate_limit_steady_slow_worker_is_fine():
    rate = p.MsgRateLimiter()
    assert all(rate.arrive(i * 0.25)[0] == "ok" for i in range(100))
