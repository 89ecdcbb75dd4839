"""Node loss in the pure coordinator (issue 9, part E): feed events, check instructions.

A lost node loses its running attempts (they run again elsewhere, not counted against
the task) and the outputs stored on it: the finished tasks whose outputs a stage still
needs run again, their consumers wait and then read the new URLs.  ``validate()`` runs
after every event (``Harness.feed``).
"""

from __future__ import annotations

from disco.backends.base import TaskOutput
from disco.master.stages import input_reply
from disco.master.states import (
    AttemptDone,
    AttemptFailed,
    ForgetTask,
    InputsChanged,
    JobFailure,
    JobFinished,
    KillTask,
    NodeConnected,
    NodeLost,
    NodesConfigured,
    StartTask,
    Tick,
)
from tests.master.test_coordinator import Harness, dir_out, starts, texts

MAP_REDUCE = [("map", "split", False), ("reduce", "group_label", False)]
FOUR = [(0, ["raw://%d" % i]) for i in range(4)]


def by_host(out):
    hosts: dict[str, list[StartTask]] = {}
    for s in starts(out):
        hosts.setdefault(s.host, []).append(s)
    return hosts


def map_out(start: StartTask) -> TaskOutput:
    """A map output on the task's node with labels 0 and 1."""
    return dir_out("dir://%s/J/map-%d-%d" % (start.host, start.taskid, start.attempt), 0, 1)


def finish(h: Harness, start: StartTask, outputs=None):
    return h.done(start, [map_out(start)] if outputs is None else outputs)


def reply_urls(h: Harness, job: str, taskid: int) -> list[str]:
    flag, entries = input_reply(h.c.task(job, taskid), "all", [])
    return [r.url for e in entries for r in e.replicas]


def test_lost_before_reduce_maps_rerun_and_reduce_gets_new_urls():
    h = Harness(nodes=(("a", 2), ("b", 2)), max_failure_rate=0)
    out = h.submit("J", MAP_REDUCE, FOUR)
    a, b = by_host(out)["a"], by_host(out)["b"]
    finish(h, b[0])
    finish(h, b[1])
    finish(h, a[0])  # a[1] still runs: the map stage is not finished, reduce not open
    out = h.feed(NodeLost("b", h.now))
    assert ForgetTask("J", b[0].taskid) in out and ForgetTask("J", b[1].taskid) in out
    assert [i for i in out if isinstance(i, KillTask)] == []  # nothing ran on b
    assert (
        "WARN: [map:%d] its outputs were lost with node b and stage reduce still needs "
        "them: it runs again on another node" % b[0].taskid
    ) in texts(out)
    again = starts(out)
    assert [(s.taskid, s.host, s.attempt) for s in again] == [(b[0].taskid, "a", 1)]
    job = h.c.jobs["J"]
    assert job.stages[0].done == 1 and job.status == "active"
    (s,) = starts(finish(h, a[1]))  # the other lost map takes the free slot of a
    assert (s.taskid, s.host) == (b[1].taskid, "a")
    out = finish(h, again[0])
    assert starts(out) == []
    out = finish(h, s)
    assert "Stage reduce scheduled with 2 tasks" in texts(out)
    reduces = starts(out)
    urls = reply_urls(h, "J", reduces[0].taskid)
    assert len(urls) == 4 and all(u.startswith("dir://a/") for u in urls)
    assert not any("dir://b/" in u for r in h.c.jobs["J"].stage_results["map"] for u in r)
    for r in reduces:
        out = h.done(r, [TaskOutput("data", "disco://a/r%d" % r.taskid)])
    assert JobFinished("J", "ready") in out


def maps_done_reduce_running(h: Harness):
    """Maps done on a and b, one reduce running on each (nodes of one slot each)."""
    pending = starts(h.submit("J", MAP_REDUCE, FOUR))
    maps, reduces = [], {}
    while pending:
        s = pending.pop(0)
        if s.stage == "reduce":
            reduces[s.host] = s
            continue
        maps.append(s)
        pending += starts(finish(h, s))
    assert sorted(reduces) == ["a", "b"] and {m.host for m in maps} == {"a", "b"}
    return maps, reduces


def test_loss_during_reduce_reruns_lost_maps_and_holds_the_reduces():
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=0)
    maps, reduces = maps_done_reduce_running(h)
    lost_maps = [m for m in maps if m.host == "b"]
    out = h.feed(NodeLost("b", h.now))
    # the reduce on b failed with its node, the one on a read b's outputs: both stop
    assert KillTask("J", reduces["b"].taskid, 0) in out
    assert KillTask("J", reduces["a"].taskid, 0) in out
    assert "Stage map reopened: 2 task(s) run again" in texts(out)
    assert (
        'Task reduce:%d failed on "b": the node was lost; it runs again on another node '
        "(a node failure, not counted against the task)" % reduces["b"].taskid
    ) in texts(out)
    assert (
        "WARNING: [reduce:%d] stopped: its input from map:%d was lost with node b; it runs "
        "again once map:%d has run again"
        % (reduces["a"].taskid, lost_maps[0].taskid, lost_maps[0].taskid)
    ) in texts(out)
    # only a lost map starts (a has one slot): the reduces are held until both ran again
    (first,) = starts(out)
    assert first.host == "a" and first.taskid in [m.taskid for m in lost_maps]
    job = h.c.jobs["J"]
    assert job.stages[0].finished is False and "map" not in job.stage_results
    (second,) = starts(finish(h, first))  # each reduce still waits for the other lost map
    assert {first.taskid, second.taskid} == {m.taskid for m in lost_maps}
    out = finish(h, second)
    assert any(t.startswith("Stage map finished") for t in texts(out))
    assert InputsChanged("J", reduces["a"].taskid) in out
    (again,) = starts(out)  # one slot: the other reduce follows
    (again2,) = starts(h.done(again, [TaskOutput("data", "disco://a/r%d" % again.taskid)]))
    assert sorted([again.taskid, again2.taskid]) == sorted(r.taskid for r in reduces.values())
    assert again.attempt == again2.attempt == 1 and again.host == again2.host == "a"
    for s in (again, again2):
        urls = reply_urls(h, "J", s.taskid)
        assert len(urls) == 4 and not any(u.startswith("dir://b/") for u in urls)
        assert sum(u.endswith("-1") for u in urls) == 2  # the re-runs' outputs
    out = h.done(again2, [TaskOutput("data", "disco://a/r%d" % again2.taskid)])
    assert JobFinished("J", "ready") in out
    # not counted: max_failure_rate 0 and still ready; the failed attempts are shown
    assert [t.failures for t in job.tasks.values()] == [0] * 6
    assert job.counters()[1][5] == 2


def test_running_tasks_of_a_lost_node_run_again_at_once_and_do_not_count():
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=0)
    out = h.submit("J", [("map", "split", False)], [(0, ["raw://x"]), (0, ["raw://y"])])
    on = by_host(out)
    out = h.feed(NodeLost("b", h.now))
    assert KillTask("J", on["b"][0].taskid, 0) in out
    assert "WARNING: [map:%d] Connection lost to the node (network busy?)" % on["b"][0].taskid in (
        texts(out)
    )
    assert starts(out) == []  # a is busy; no retry delay: it waits for a slot
    assert h.c.task("J", on["b"][0].taskid).state == "waiting"
    (s,) = starts(h.done(on["a"][0]))
    assert (s.taskid, s.host, s.attempt) == (on["b"][0].taskid, "a", 1)
    out = h.done(s)
    assert JobFinished("J", "ready") in out
    assert h.c.nodes["b"].connected is False


def test_pipeline_of_three_stages_reruns_the_chain_back_to_the_first():
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=0)
    pipeline = [
        ("map", "split", False),
        ("shuffle", "group_node", False),
        ("total", "group_all", False),
    ]
    out = h.submit("J", pipeline, [(0, ["raw://x"]), (0, ["raw://y"])])
    maps = {s.host: s for s in starts(out)}
    out = finish(h, maps["a"], [dir_out("dir://a/J/m0", 0)])
    out = finish(h, maps["b"], [dir_out("dir://b/J/m1", 0)])
    shuffles = {s.host: s for s in starts(out)}  # group_node: one task per node, pinned
    assert set(shuffles) == {"a", "b"}
    h.done(shuffles["a"], [dir_out("dir://a/J/s0", 0)])
    out = h.done(shuffles["b"], [dir_out("dir://b/J/s1", 0)])
    (total,) = starts(out)
    out = h.feed(NodeLost("b", h.now))
    # total reads shuffle b's output (lost), shuffle b read map b's output (lost)
    assert {i.taskid for i in out if isinstance(i, ForgetTask)} == {
        maps["b"].taskid,
        shuffles["b"].taskid,
    }
    assert "Stage map reopened: 1 task(s) run again" in texts(out)
    assert "Stage shuffle reopened: 1 task(s) run again" in texts(out)
    job = h.c.jobs["J"]
    assert h.c.task("J", shuffles["b"].taskid).held_by == {maps["b"].taskid}
    assert h.c.task("J", total.taskid).held_by == {shuffles["b"].taskid}
    assert KillTask("J", total.taskid, 0) in out  # it was reading shuffle b's output
    (m,) = starts(out)
    assert m.taskid == maps["b"].taskid and m.host == "a"
    out = finish(h, m, [dir_out("dir://a/J/m1b", 0)])
    (s,) = starts(out)
    assert s.taskid == shuffles["b"].taskid and s.host == "a"
    assert reply_urls(h, "J", s.taskid) == ["dir://a/J/m1b"]
    out = h.done(s, [dir_out("dir://a/J/s1b", 0)])
    (t,) = starts(out)
    assert t.taskid == total.taskid
    assert sorted(reply_urls(h, "J", t.taskid)) == ["dir://a/J/s0", "dir://a/J/s1b"]
    out = h.done(t, [TaskOutput("data", "disco://a/total")])
    assert JobFinished("J", "ready") in out
    assert job.results == [["disco://a/total"]]


def test_a_host_lost_then_back_gets_tasks_again():
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=0)
    out = h.submit("J", MAP_REDUCE, FOUR)
    on = by_host(out)
    finish(h, on["b"][0])  # done on b; the next map of the queue starts on b
    out = h.feed(NodeLost("b", h.now))
    assert "b" in h.c.lost and h.c.nodes["b"].connected is False
    out = h.feed(NodeConnected("b", h.now))
    assert "b" not in h.c.lost and h.c.nodes["b"].connected is True
    assert [s.host for s in starts(out)] == ["b"]  # b takes work again at once
    pending = [*on["a"], *starts(out)]
    while pending:
        s = pending.pop(0)
        out = finish(h, s) if s.stage == "map" else h.done(s, [])
        pending += starts(out)
    assert h.c.jobs["J"].status == "ready"
    # the re-run map's lost output on b is not among the reduce inputs
    assert "dir://b/J/map-%d-0" % on["b"][0].taskid not in [
        u for r in h.c.jobs["J"].stage_results["map"] for u in r
    ]


def test_a_config_table_without_the_node_then_node_lost():
    """The runtime feeds NodeLost after NodesConfigured drops a host; the node is then
    unknown to the coordinator but its outputs are still recovered."""
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=0)
    maps, reduces = maps_done_reduce_running(h)
    h.feed(NodesConfigured((("a", 2),), frozenset(), frozenset({"a"})))
    out = h.feed(NodeLost("b", h.now))
    assert KillTask("J", reduces["b"].taskid, 0) in out
    assert sorted(i.taskid for i in out if isinstance(i, ForgetTask)) == [
        m.taskid for m in maps if m.host == "b"
    ]
    assert "b" not in h.c.nodes
    pending = starts(out)
    while pending:
        s = pending.pop(0)
        out = finish(h, s) if s.stage == "map" else h.done(s, [])
        pending += starts(out)
    assert h.c.jobs["J"].status == "ready"


def test_outputs_not_needed_any_more_are_left_alone():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    maps, reduces = maps_done_reduce_running(h)
    h.done(reduces["b"], [TaskOutput("data", "disco://b/r")])  # last stage: results
    out = h.feed(NodeLost("a", h.now))
    # reduce a fails with its node and needs every map output: a's maps run again;
    # reduce b (done, on b) keeps its results; b's maps are not lost
    assert sorted(i.taskid for i in out if isinstance(i, ForgetTask)) == [
        m.taskid for m in maps if m.host == "a"
    ]


def test_finished_last_stage_tasks_whose_results_are_lost_run_again():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    maps, reduces = maps_done_reduce_running(h)
    h.done(reduces["b"], [TaskOutput("data", "disco://b/r")])
    out = h.feed(NodeLost("b", h.now))
    forgotten = {i.taskid for i in out if isinstance(i, ForgetTask)}
    # the job is not done: its results must be readable, so reduce b runs again
    assert reduces["b"].taskid in forgotten
    assert "stage reduce (the job's results) still needs them" in " ".join(texts(out))


def test_a_rerun_with_other_outputs_ends_the_job_clearly():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    maps, reduces = maps_done_reduce_running(h)
    out = h.feed(NodeLost("b", h.now))
    rerun = starts(out)[0]
    out = h.done(rerun, [dir_out("dir://a/J/x", 0, 1, 7)])  # label 7 is new
    failure = [i for i in out if isinstance(i, JobFailure)]
    assert failure and "its index has labels the lost one had not: [7]" in failure[0].message
    assert JobFinished("J", "dead") in out


def test_input_lost_with_a_known_lost_node_does_not_fail_the_job():
    """INPUT_ERR of every replica on a lost host, then the attempt fails (even fatally):
    the producer runs again and the consumer waits, the job lives on."""
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=0)
    maps, reduces = maps_done_reduce_running(h)
    # the runtime learnt b is lost while its outputs were not yet recovered (a race
    # between the once-a-second poll and the reduce's INPUT_ERR)
    h.c.lost.add("b")
    h.c.nodes["b"].connected = False
    r = reduces["a"]
    out = h.feed(AttemptFailed("J", r.taskid, r.attempt, "fatal", "404 on dir://b/..", h.now))
    assert JobFinished("J", "dead") not in out and h.c.jobs["J"].status == "active"
    assert {i.taskid for i in out if isinstance(i, ForgetTask)} == {
        m.taskid for m in maps if m.host == "b"
    }
    assert h.c.task("J", r.taskid).state == "waiting" and h.c.task("J", r.taskid).held_by
    assert h.c.task("J", r.taskid).failures == 0


def test_an_input_lost_with_no_producer_fails_as_usual():
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=0)
    out = h.submit("J", [("map", "split", False)], [(0, ["disco://b/old/data"])])
    (s,) = starts(out)
    h.c.lost.add("b")
    out = h.feed(AttemptFailed("J", s.taskid, s.attempt, "error", "refused", h.now))
    assert JobFinished("J", "dead") in out  # nothing can bring it back: 1 > 0 failures


def test_late_report_of_a_stopped_attempt_is_ignored():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    maps, reduces = maps_done_reduce_running(h)
    h.feed(NodeLost("b", h.now))
    r = reduces["a"]
    out = h.feed(AttemptDone("J", r.taskid, 0, (), 0.1, h.now))
    assert out == [] and h.c.task("J", r.taskid).state == "waiting"


def test_concurrent_stage_gets_the_new_url_in_place_not_a_second_input():
    h = Harness(nodes=(("a", 2), ("b", 2)))
    pipeline = [("map", "split", False), ("reduce", "group_all", True)]
    out = h.submit("J", pipeline, [(0, ["raw://%d" % i]) for i in range(3)])
    on = by_host(out)
    (m_b,) = on["b"][:1]
    out = finish(h, m_b, [dir_out("dir://b/J/m", 0)])
    (r,) = [s for s in starts(out) if s.stage == "reduce"]
    reduce_id = r.taskid
    assert reply_urls(h, "J", reduce_id) == ["dir://b/J/m"]
    out = h.feed(NodeLost("b", h.now))
    assert h.c.task("J", reduce_id).held_by == {m_b.taskid}
    assert starts(out) == []  # a runs the two other maps
    rerun = next(s for s in starts(finish(h, on["a"][0])) if s.taskid == m_b.taskid)
    h.done(rerun, [dir_out("dir://a/J/m2", 0)])
    # replaced in place (input 0), not added; map:0's output came meanwhile
    assert reply_urls(h, "J", reduce_id) == ["dir://a/J/m2", map_out(on["a"][0]).url]
    assert not h.c.task("J", reduce_id).held_by


def test_a_failure_reading_from_a_producer_that_already_runs_again_waits_for_it():
    """Defence in depth: a consumer that runs while its producer runs again (it cannot:
    it is held; the hold is lifted here by hand) and fails reading the lost output
    (even fatally) is held again; the job lives on."""
    h = Harness(nodes=(("a", 3), ("b", 1)), max_failure_rate=0)
    m0, m1 = starts(h.submit("J", MAP_REDUCE, FOUR[:2]))
    assert (m0.host, m1.host) == ("a", "b")
    finish(h, m0)
    reduces = starts(finish(h, m1))
    assert [r.host for r in reduces] == ["a", "a"]
    h.feed(NodeLost("b", h.now))
    task = h.c.task("J", reduces[0].taskid)
    assert task.state == "waiting" and task.held_by == {m1.taskid}
    task.held_by.clear()
    (r,) = [s for s in starts(h.feed(Tick(h.now))) if s.taskid == task.taskid]
    out = h.feed(AttemptFailed("J", r.taskid, r.attempt, "fatal", "refused", h.now))
    assert JobFinished("J", "dead") not in out and h.c.jobs["J"].status == "active"
    assert task.state == "waiting" and task.held_by == {m1.taskid} and task.failures == 0
    assert (
        "WARNING: [reduce:%d] refused; it runs again once map:%d has run again"
        % (r.taskid, m1.taskid)
    ) in texts(out)
