"""Disco.events / rawevents offsets and EventMonitor rendering (library.md 2.1, 19.6)."""

from __future__ import annotations

import io
import json
import socket

import pytest

from disco.core import Disco, master_url
from disco.error import CommError
from disco.eventmonitor import (
    ANSIEventWriter,
    EventMonitor,
    EventWriter,
    JSONEventWriter,
    OutputStream,
    TextEventWriter,
    status_line,
)


def line(ts: str, host: str, msg: str) -> bytes:
    return (json.dumps([ts, host, msg], ensure_ascii=False) + "\n").encode("utf-8")


E1 = line("2024/04/05 21:34:38", "master", 'Created job "J@1:2:3"')
E2 = line("2024/04/05 21:34:39", "node1", "MSG: [map:0] héllo wörld")  # non-ASCII bytes
E3 = line("2024/04/05 21:34:40", "master", "READY: Job done in 0:00:01.000")


def test_master_addresses_are_normalised() -> None:
    assert master_url("disco://node1", 8989) == "http://node1:8989"
    assert master_url("disco://node1:1234", 8989) == "http://node1:8989"
    assert master_url("http://h:5/", 8989) == "http://h:5"
    assert master_url("h:5", 8989) == "http://h:5"
    assert master_url("h", 7000) == "http://h:7000"
    assert (
        repr(Disco("disco://a"))
        == "Disco master at http://a:%s" % Disco("disco://a").settings["DISCO_PORT"]
    )


def test_events_offsets_are_bytes_and_resume(events_server) -> None:
    events_server.events = E1 + E2
    disco = Disco(events_server.url)
    got = list(disco.events("J@1:2:3"))
    assert [e for _, e in got] == [tuple(json.loads(E1)), tuple(json.loads(E2))]
    assert [o for o, _ in got] == [len(E1), len(E1) + len(E2)]
    assert events_server.ranges == [None]  # offset 0: no Range header

    events_server.events += E3
    last = got[-1][0]
    more = list(disco.events("J@1:2:3", offset=last))
    assert more == [(last + len(E3), tuple(json.loads(E3)))]
    assert events_server.ranges[-1] == "bytes=%d-" % last
    # nothing new: no events, no error
    assert list(disco.events("J@1:2:3", offset=last + len(E3))) == []


def test_events_stop_at_a_partial_line(events_server) -> None:
    events_server.events = E1 + E2[:10]
    got = list(Disco(events_server.url).events("J"))
    assert got == [(len(E1), tuple(json.loads(E1)))]
    # a partial line that is followed by garbage also stops iteration
    events_server.events = E1 + b'["broken\n' + E3
    assert [o for o, _ in Disco(events_server.url).events("J")] == [len(E1)]


def test_rawevents_is_text_from_offset(events_server) -> None:
    events_server.events = E1 + E2
    disco = Disco(events_server.url)
    assert disco.rawevents("J") == (E1 + E2).decode("utf-8")
    assert disco.rawevents("J", offset=len(E1)) == E2.decode("utf-8")


def test_request_without_master_names_the_master(monkeypatch) -> None:
    from disco import httpclient

    # keep the retries, not the waits
    monkeypatch.setattr(httpclient, "DEFAULT_RETRY", httpclient.RetryPolicy(base_delay=0.0))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    disco = Disco("http://127.0.0.1:%d" % port)
    with pytest.raises(CommError) as info:
        disco.joblist()
    assert info.value.code is None
    assert "(is disco master running at http://127.0.0.1:%d?)" % port in str(info.value)


def test_refused_master_is_one_short_error_at_once(monkeypatch, caplog) -> None:
    """Issue 12.5: a misspelled DISCO_MASTER in a Python job: one ``MasterUnreachable``
    naming the master, no retries, no chained traceback of the cause."""
    from disco import httpclient
    from disco.core import Job
    from disco.error import MasterUnreachable

    slow = httpclient.RetryPolicy(base_delay=10.0)  # a retry would be seen
    monkeypatch.setattr(httpclient, "DEFAULT_RETRY", slow)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    url = "http://127.0.0.1:%d" % port
    monkeypatch.setenv("DISCO_MASTER", url)
    with pytest.raises(MasterUnreachable) as info:
        Job().run(input=["raw://a"], map=_identity_map)
    assert str(info.value) == "Connection refused (is disco master running at %s?)" % url
    assert info.value.master == url and isinstance(info.value, CommError)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


def _identity_map(line, params):
    yield line, 1


# -- rendering -----------------------------------------------------------------------------
def test_status_line_uses_last_stage_with_counts() -> None:
    pipeline = [["map", 0, 0, 0, 3, 1], ["map_shuffle", 0, 0, 1, 0, 0], ["reduce", 0, 0, 0, 0, 0]]
    assert (
        status_line(pipeline)
        == "Status: [map_shuffle] 0 pending, 0 waiting, 1 running, 0 done, 0 failed"
    )
    assert status_line([["map", 0, 0, 0, 0, 0]]) is None
    assert status_line([]) is None


def test_status_line_says_why_a_task_is_retried() -> None:
    failure = {"task": "map:1", "attempt": 2, "host": "n1", "reason": "DataError: x\n  y"}
    pipeline = [["map", 0, 1, 0, 3, 2], ["reduce", 0, 0, 0, 0, 0]]
    assert status_line(pipeline, failure) == (
        "Status: [map] 0 pending, 1 waiting, 0 running, 3 done, 2 failed; "
        "last failure: map:1 attempt 2 on n1: DataError: x y"
    )
    # a failure of an earlier stage is not this stage's news
    later = [["map", 0, 0, 0, 4, 2], ["reduce", 0, 0, 1, 0, 0]]
    assert status_line(later, failure) == (
        "Status: [reduce] 0 pending, 0 waiting, 1 running, 0 done, 0 failed"
    )


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_output_stream_picks_the_writer(monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    assert type(OutputStream("")) is EventWriter
    assert type(OutputStream(None)) is EventWriter
    assert type(OutputStream("json")) is JSONEventWriter
    assert type(OutputStream("nocolor", FakeTTY())) is TextEventWriter
    assert type(OutputStream("yes", io.StringIO())) is TextEventWriter  # not a terminal
    assert type(OutputStream("yes", FakeTTY())) is ANSIEventWriter
    monkeypatch.setenv("TERM", "dumb")
    assert type(OutputStream("yes", FakeTTY())) is TextEventWriter


class JobHandle:
    def __init__(self, disco: Disco, name: str) -> None:
        self.name, self.disco = name, disco

    def events(self, offset: int = 0):
        return self.disco.events(self.name, offset=offset)

    def jobinfo(self):
        return self.disco.jobinfo(self.name)


def test_monitor_text_output_and_status_changes(events_server) -> None:
    events_server.events = E1
    events_server.pipeline = [["map", 0, 1, 1, 0, 0]]
    out = io.StringIO()
    monitor = EventMonitor(JobHandle(Disco(events_server.url), "J"), format="nocolor", handle=out)
    monitor.poll()
    monitor.poll()  # nothing new: no repeated event, no repeated status
    events_server.events += E3
    events_server.pipeline = [["map", 0, 0, 0, 2, 0]]
    monitor.poll()
    monitor.cleanup()
    assert out.getvalue().splitlines() == [
        '2024/04/05 21:34:38 master Created job "J@1:2:3"',
        "Status: [map] 0 pending, 1 waiting, 1 running, 0 done, 0 failed",
        "2024/04/05 21:34:40 master READY: Job done in 0:00:01.000",
        "Status: [map] 0 pending, 0 waiting, 0 running, 2 done, 0 failed",
    ]
    assert monitor.status == "Status: [map] 0 pending, 0 waiting, 0 running, 2 done, 0 failed"
    assert monitor.stats == ["map", 0, 0, 0, 2, 0]
    assert monitor.offset == len(E1) + len(E3)
    assert monitor.prev_status == monitor.status


def test_monitor_json_goes_to_stdout(events_server, capsys) -> None:
    events_server.events = E1 + E2
    monitor = EventMonitor(JobHandle(Disco(events_server.url), "J"), format="json")
    monitor.poll()
    out, err = capsys.readouterr()
    assert [json.loads(x) for x in out.splitlines()] == [json.loads(E1), json.loads(E2)]
    assert err == ""


def test_monitor_ansi_colours(events_server, monkeypatch) -> None:
    monkeypatch.setenv("TERM", "xterm")
    err = line("t", "node1", "ERROR: [map:0] boom")
    warn = line("t", "master", "WARN: Job killed")
    events_server.events = err + warn + E3
    out = FakeTTY()
    monitor = EventMonitor(JobHandle(Disco(events_server.url), "J@1"), format=True, handle=out)
    monitor.poll()
    lines = out.getvalue().splitlines()
    assert "J@1" in lines[0] and "\033[1m" in lines[0]
    assert "\033[32mt\033[0m \033[34mnode1     \033[0m \033[31mERROR: [map:0] boom" in lines[1]
    assert "\033[35mWARN: Job killed" in lines[2]
    assert "\033[42;30mREADY" in lines[3]


def test_disabled_monitor_makes_no_requests(events_server) -> None:
    monitor = EventMonitor(JobHandle(Disco(events_server.url), "J"), format="", poll_interval=5)
    monitor.poll()
    monitor.refresh()  # disabled: returns at once, no sleep
    assert events_server.ranges == []
