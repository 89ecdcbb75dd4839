"""Our worker writes the requests that wait for no reply together (master-api.md 8.3:
replies come in request order, a worker may pipeline): the byte stream is the
protocol's messages in the protocol's order, in fewer writes.

The worker runs as a real process against the protocol peer (``tests.worker.peer``);
its output is a ``SOCK_SEQPACKET`` socket, so each of its writes is seen on its own.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from disco.framing import FrameParser
from disco.job import Job
from disco.worker.classic.func import sum_combiner
from tests.worker import jobfuncs
from tests.worker.peer import Node

pytestmark = pytest.mark.timeout(60)


def job() -> Job:
    return Job(master="http://127.0.0.1:1")


def frames(write: bytes) -> list[tuple[str, Any]]:
    parser = FrameParser(1 << 20)
    parser.feed(write)
    out = []
    while (frame := parser.next_frame()) is not None:
        out.append((frame.type, json.loads(frame.payload)))
    assert not parser.unparsed  # every write is whole messages
    return out


def test_a_map_task_sends_its_last_msg_outputs_and_done_in_one_write(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, partitions=2)
    run = node.run(inputs=[(0, ["raw://a b c d e f g h"])], packets=True)
    assert run.status == "DONE", run.payload
    writes = [frames(w) for w in run.writes]
    assert [m for w in writes for m in w] == run.log  # the same messages, in order
    assert [t for t, _ in writes[0]][:2] == ["WORKER", "TASK"]
    last = writes[-1]
    assert len(run.outputs) == 2
    assert [t for t, _ in last] == ["MSG", "OUTPUT", "OUTPUT", "MSG", "DONE"]
    assert last[0][1] == "Done: 1 entries mapped"
    assert last[3][1] == "Results sent to master"
    assert sorted(run.records()) == sorted((w, 1) for w in "abcdefgh")


def test_with_a_combiner_the_last_msg_of_the_map_goes_at_once(tmp_path: Any) -> None:
    """A combiner (job code) still runs after the last entry: the map's last MSG is not
    held for it; the outputs and DONE still go in one write."""
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, combiner=sum_combiner)
    run = node.run(inputs=[(0, ["raw://x y x"])], packets=True)
    assert run.status == "DONE", run.payload
    writes = [frames(w) for w in run.writes]
    assert [m for w in writes for m in w] == run.log
    assert [t for t, _ in writes[-1]] == ["OUTPUT", "MSG", "DONE"]
    assert writes[-2] == [("MSG", "Done: 1 entries mapped")]
    assert dict(run.records()) == {"x": 2, "y": 1}


def test_a_reduce_sends_its_last_msg_at_once(tmp_path: Any) -> None:
    """The reduce function may go on long after reading its last entry."""
    node = Node(str(tmp_path), job(), map=jobfuncs.words_map, reduce=jobfuncs.sorted_reduce)
    run = node.run(stage="reduce", grouping="group_all", group=(0, ""), inputs=[], packets=True)
    assert run.status == "DONE", run.payload
    writes = [frames(w) for w in run.writes]
    assert [m for w in writes for m in w] == run.log
    assert writes[-2] == [("MSG", "Done: 0 entries reduced")]
    assert [t for t, _ in writes[-1]] == ["OUTPUT", "MSG", "DONE"]


def test_a_failure_after_held_messages_sends_them_before_its_error(tmp_path: Any) -> None:
    node = Node(str(tmp_path), job(), map=jobfuncs.failing_map)
    run = node.run(inputs=[(0, ["raw://data"])], packets=True)
    assert run.status == "ERROR"
    writes = [frames(w) for w in run.writes]
    assert [m for w in writes for m in w] == run.log


class _Out:
    """The worker's stderr (its protocol channel): records each write."""

    def __init__(self) -> None:
        self.buffer = self
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.writes.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass


@pytest.fixture
def channel(monkeypatch: pytest.MonkeyPatch) -> _Out:
    from disco.worker import protocol

    out = _Out()
    monkeypatch.setattr(protocol.WorkerProtocol, "stderr", out)
    monkeypatch.setattr(protocol, "_held", None)
    monkeypatch.setattr(protocol, "_reader", protocol._ReplyReader(-1))
    yield out
    assert protocol._held is None


def test_held_messages_go_with_the_next_one_that_must_go(channel: _Out) -> None:
    from disco.worker.protocol import WorkerProtocol as W

    assert W.hold() and not W.hold()  # a second hold is the same hold
    W.send_nowait("OUTPUT", [0, "a/b", 3])
    W.send_nowait("MSG", "x")
    assert channel.writes == []
    W.exchange("ERROR", "boom")  # ends the task: no reply read
    [write] = channel.writes
    assert [t for t, _ in frames(write)] == ["OUTPUT", "MSG", "ERROR"]
    W.send_nowait("MSG", "after")  # no longer held
    assert len(channel.writes) == 2


def test_release_writes_what_was_held_in_one_write(channel: _Out) -> None:
    from disco.worker.protocol import WorkerProtocol as W

    W.release()  # nothing held: nothing written
    assert channel.writes == []
    W.hold()
    W.send_all_nowait([("WORKER", {"pid": 1, "version": "1.1"}, False), ("TASK", "", True)])
    W.send_nowait("MSG", "y")
    W.release()
    assert [[t for t, _ in frames(w)] for w in channel.writes] == [["WORKER", "TASK", "MSG"]]


def test_a_reply_waited_for_sends_what_was_held_first(channel: _Out) -> None:
    """A message that waits for its reply cannot be held: it and what was held before
    it are written before the reply is read (else both sides would wait)."""
    import os

    from disco.framing import encode_frame
    from disco.worker import protocol
    from disco.worker.protocol import WorkerProtocol as W

    r, w = os.pipe()
    try:
        protocol._reader.fd = r
        os.write(w, encode_frame("OK", b'"ok"') + encode_frame("INPUT", b'["done",[]]'))
        W.hold()
        W.send_nowait("MSG", "held")
        assert W.send("INPUT", ["exclude", []]) == ["done", []]
        [write] = channel.writes
        assert [t for t, _ in frames(write)] == ["MSG", "INPUT"]
    finally:
        os.close(r)
        os.close(w)
