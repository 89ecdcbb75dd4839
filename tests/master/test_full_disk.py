"""A full node in the pure coordinator (issue 8, section 4): no task starts there until
space is back; when no node has space the waiting jobs fail with the disks' state."""

from __future__ import annotations

from disco.master.coordinator import disk_text, format_bytes
from disco.master.scheduler import DiskFull
from disco.master.states import (
    JobFailure,
    JobFinished,
    NodeFull,
    NodeSpaceBack,
    RetryDue,
    StartTask,
    Tick,
)
from tests.master.test_coordinator import Harness, starts, texts

MAP = [("map", "split", False)]
MiB = 1 << 20


def full(h: Harness, job: str, host: str, free: int = 0, needed: int = 3 * MiB):
    return h.feed(NodeFull(job, host, "/mnt/" + host, free, needed, h.now))


def test_failed_task_is_not_retried_on_the_full_node():
    h = Harness(nodes=(("n1", 1), ("n2", 1)))
    a, b = starts(h.submit("J", MAP, [(0, ["raw://a"]), (0, ["raw://b"])]))
    failing = a if a.host == "n1" else b
    full(h, "J", "n1")
    out = h.fail(failing, message="OSError: [Errno 28] No space left on device")
    out += h.feed(RetryDue("J", failing.taskid, h.now))
    assert not [s for s in starts(out) if s.host == "n1"]
    other = b if failing is a else a
    out = h.done(other)  # n2 is free now: the retry goes there, never to n1
    retry = starts(out)
    assert [s.host for s in retry] == ["n2"] and retry[0].taskid == failing.taskid
    assert h.c.nodes["n1"].full is not None


def test_tasks_start_again_when_space_is_back():
    h = Harness(nodes=(("n1", 1),), full_grace=60.0)
    (m0,) = starts(h.submit("J", MAP, [(0, ["raw://a"])]))
    full(h, "J", "n1")
    out = h.fail(m0, message="No space left on device")
    out += h.feed(RetryDue("J", m0.taskid, h.now))
    assert starts(out) == []  # waiting: the only node is full
    h.now += 5
    out = h.feed(NodeSpaceBack("n1", 4 * MiB, h.now))
    assert [(s.host, s.attempt) for s in starts(out)] == [("n1", 1)]
    assert any("Node n1 has space again (4.0 MiB free)" in t for t in texts(out))
    assert h.c.nodes["n1"].full is None


def test_job_fails_when_no_node_has_space_for_the_grace_period():
    h = Harness(nodes=(("n1", 1), ("n2", 1)), full_grace=10.0)
    a, b = starts(h.submit("J", MAP, [(0, ["raw://a"]), (0, ["raw://b"])]))
    full(h, "J", "n1", free=1000, needed=5 * MiB)
    h.fail(a, message="No space left on device")
    full(h, "J", "n2", free=0, needed=MiB)
    out = h.fail(b, message="No space left on device")
    out += h.feed(RetryDue("J", a.taskid, h.now))
    out += h.feed(RetryDue("J", b.taskid, h.now))
    assert starts(out) == []
    h.now += 9.0
    assert not [i for i in h.feed(Tick(h.now)) if isinstance(i, JobFinished)]
    h.now += 1.5
    out = h.feed(Tick(h.now))
    failure = [i for i in out if isinstance(i, JobFailure)]
    assert [i for i in out if isinstance(i, JobFinished)] == [JobFinished("J", "dead")]
    assert len(failure) == 1
    message = failure[0].message
    assert message.startswith("No node has space left: ")
    assert "the disk of node n1 is full (/mnt/n1: 1000 bytes free, tasks need at least 5.0 MiB)" in (
        message
    )
    assert "the disk of node n2 is full (/mnt/n2: 0 bytes free, tasks need at least 1.0 MiB)" in (
        message
    )
    assert "ERROR: " + message in texts(out)


def test_a_node_with_space_keeps_the_job_alive():
    h = Harness(nodes=(("n1", 1), ("n2", 1)), full_grace=1.0)
    (m0,) = starts(h.submit("J", MAP, [(0, ["raw://a"])]))
    full(h, "J", m0.host)
    out = h.fail(m0, message="No space left on device")
    out += h.feed(RetryDue("J", m0.taskid, h.now))
    h.now += 100
    out += h.feed(Tick(h.now))
    assert not [i for i in out if isinstance(i, JobFinished)]
    assert [s.host for s in starts(out)] == [({"n1", "n2"} - {m0.host}).pop()]


def test_disk_texts():
    assert format_bytes(512) == "512 bytes"
    assert format_bytes(3 * 1024) == "3.0 KiB"
    assert format_bytes(5 * MiB + MiB // 2) == "5.5 MiB"
    assert disk_text(DiskFull("/d", 0, MiB, 0.0)) == "/d: 0 bytes free, tasks need at least 1.0 MiB"


def test_start_task_instruction_unchanged():
    h = Harness()
    (m0,) = starts(h.submit("J", MAP, [(0, ["raw://a"])]))
    assert isinstance(m0, StartTask) and m0.host == "n1"
