"""Full disks in the pure coordinator (issue 8, section 4): a task that failed for want
of space does not start on that node again until space is back; when no node has space
for it, its job fails with the disks' state and what the task needs."""

from __future__ import annotations

from disco.master.coordinator import format_bytes
from disco.master.states import (
    JobFailure,
    JobFinished,
    NodeFull,
    NodeSpaceBack,
    RetryDue,
    Tick,
)
from tests.master.test_coordinator import Harness, starts, texts

MAP = [("map", "split", False)]
MiB = 1 << 20
ENOSPC = "OSError: [Errno 28] No space left on device"


def fail_full(h: Harness, start, free: int = 0, needed: int = 3 * MiB):
    """What the runtime feeds for an attempt that failed with ENOSPC."""
    out = h.feed(
        NodeFull(start.job, start.taskid, start.host, "/mnt/" + start.host, free, needed, h.now)
    )
    out += h.fail(start, message=ENOSPC)
    out += h.feed(RetryDue(start.job, start.taskid, h.now))
    return out


def test_failed_task_is_not_retried_on_the_full_node():
    h = Harness(nodes=(("n1", 1), ("n2", 1)))
    a, b = starts(h.submit("J", MAP, [(0, ["raw://a"]), (0, ["raw://b"])]))
    failing, other = (a, b) if a.host == "n1" else (b, a)
    out = fail_full(h, failing)
    assert starts(out) == []  # n1 has a free slot, but no space for this task
    assert "WARN: [map:%d] The disk of node n1 is full (/mnt/n1): the task does not start " % (
        failing.taskid
    ) + "there again until 3.0 MiB are free" in texts(out)
    assert h.c.nodes["n1"].full is not None and h.c.nodes["n1"].full.needed == 3 * MiB
    out = h.done(other)  # n2 is free now: the retry goes there
    assert [(s.taskid, s.host) for s in starts(out)] == [(failing.taskid, "n2")]


def test_other_tasks_still_start_on_the_node():
    h = Harness(nodes=(("n1", 1),), full_grace=60.0)
    (a,) = starts(h.submit("J", MAP, [(0, ["raw://a"]), (0, ["raw://b"])], max_cores=1))
    assert a.taskid == 0
    out = fail_full(h, a)  # task 0 needs more than n1 has; task 1 may still run there
    assert [(s.taskid, s.host) for s in starts(out)] == [(1, "n1")]


def test_the_task_starts_again_when_space_is_back():
    h = Harness(nodes=(("n1", 1),), full_grace=60.0)
    (m0,) = starts(h.submit("J", MAP, [(0, ["raw://a"])]))
    assert starts(fail_full(h, m0, needed=3 * MiB)) == []
    h.now += 5
    assert starts(h.feed(NodeSpaceBack("n1", 2 * MiB, h.now))) == []  # not enough yet
    assert h.c.nodes["n1"].full.free == 2 * MiB
    out = h.feed(NodeSpaceBack("n1", 4 * MiB, h.now))
    assert [(s.host, s.attempt) for s in starts(out)] == [("n1", 1)]
    assert "[map:0] Node n1 has space again (4.0 MiB free): the task may start there" in texts(
        out
    )
    assert h.c.nodes["n1"].full is None


def test_job_fails_when_no_node_has_space_for_the_grace_period():
    h = Harness(nodes=(("n1", 1), ("n2", 1)), full_grace=10.0)
    a, b = starts(h.submit("J", MAP, [(0, ["raw://a"]), (0, ["raw://b"])]))
    first, second = (a, b) if a.host == "n1" else (b, a)
    fail_full(h, first, free=1000, needed=5 * MiB)
    out = h.done(second)
    assert [(s.taskid, s.host) for s in starts(out)] == [(first.taskid, "n2")]
    h.now += 3
    out = fail_full(h, starts(out)[0], free=0, needed=MiB)
    assert starts(out) == []
    h.now += 9.0
    assert not [i for i in h.feed(Tick(h.now)) if isinstance(i, JobFinished)]
    h.now += 1.5
    out = h.feed(Tick(h.now))
    assert [i for i in out if isinstance(i, JobFinished)] == [JobFinished("J", "dead")]
    (failure,) = [i for i in out if isinstance(i, JobFailure)]
    assert failure.message == (
        "No node has space left for task map:%d: "
        "the disk /mnt/n1 of node n1 is full (1000 bytes free, the task needs at least "
        "5.0 MiB); the disk /mnt/n2 of node n2 is full (0 bytes free, the task needs at "
        "least 1.0 MiB)" % first.taskid
    )
    assert "ERROR: " + failure.message in texts(out)
    assert h.c.nodes["n1"].full is None and h.c.nodes["n2"].full is None  # nobody waits


def test_a_node_with_space_keeps_the_job_alive():
    h = Harness(nodes=(("n1", 1), ("n2", 1)), full_grace=1.0)
    (m0,) = starts(h.submit("J", MAP, [(0, ["raw://a"])]))
    out = fail_full(h, m0)
    h.now += 100
    out += h.feed(Tick(h.now))
    assert not [i for i in out if isinstance(i, JobFinished)]
    assert [s.host for s in starts(out)] == [({"n1", "n2"} - {m0.host}).pop()]


def test_format_bytes():
    assert format_bytes(512) == "512 bytes"
    assert format_bytes(3 * 1024) == "3.0 KiB"
    assert format_bytes(5 * MiB + MiB // 2) == "5.5 MiB"
    assert format_bytes(3 << 30) == "3.0 GiB"
