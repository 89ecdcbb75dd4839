"""The pure coordinator (master-api.md 7, 10): feed events, compare instructions.

No I/O and no clock: ``validate()`` runs after every event.
"""

from __future__ import annotations

from disco.backends.base import TaskOutput
from disco.master.coordinator import Coordinator, format_duration
from disco.master.jobpack import DataInput, DirInput, JobSpec, StageSpec
from disco.master.stages import input_reply, retry_replicas
from disco.master.states import (
    AppendEvent,
    AttemptDone,
    AttemptExited,
    AttemptFailed,
    InputFailed,
    InputsChanged,
    InputsResolved,
    JobFinished,
    JobForgotten,
    JobSubmitted,
    KillRequested,
    KillTask,
    NodeLost,
    NodesConfigured,
    ResolveInputs,
    RetryDue,
    SaveJob,
    ScheduleRetry,
    SettingsChanged,
    StartTask,
    Tick,
)


def spec(pipeline, inputs, max_cores=2**31, save_results=False) -> JobSpec:
    return JobSpec(
        version=2,
        prefix="T",
        worker="w.sh",
        owner="o",
        pipeline=tuple(StageSpec(*row) for row in pipeline),
        inputs=tuple(
            i if isinstance(i, DirInput) else DataInput(i[0], 0, tuple(i[1])) for i in inputs
        ),
        jobenvs={},
        jobdict={},
        max_cores=max_cores,
        save_results=save_results,
    )


class Harness:
    def __init__(self, nodes=(("n1", 2),), blacklist=(), **kw):
        kw.setdefault("retry_delay", 0.0)
        self.c = Coordinator(**kw)
        self.now = 1000.0
        self.feed(
            NodesConfigured(tuple(nodes), frozenset(blacklist), frozenset(h for h, _ in nodes))
        )

    def feed(self, event):
        out = self.c.handle(event)
        self.c.validate()
        return out

    def submit(self, name, pipeline, inputs, **kw):
        return self.feed(JobSubmitted(name, spec(pipeline, inputs, **kw), self.now))

    def done(self, start, outputs=(), duration=0.5):
        self.now += duration
        return self.feed(
            AttemptDone(start.job, start.taskid, start.attempt, tuple(outputs), duration, self.now)
        )

    def fail(self, start, kind="error", message="boom"):
        return self.feed(
            AttemptFailed(start.job, start.taskid, start.attempt, kind, message, self.now)
        )


def starts(out):
    return [i for i in out if isinstance(i, StartTask)]


def texts(out):
    return [i.text for i in out if isinstance(i, AppendEvent)]


def dir_out(url, *labels):
    return TaskOutput("dir", url, labels=tuple((lb, 10) for lb in labels))


def test_submit_exact_instructions():
    h = Harness()
    out = h.submit("J", [("map", "split", False)], [(0, ["raw://a"]), (0, ["raw://b"])])
    assert out == [
        AppendEvent("J", "New job initialized!"),
        AppendEvent("J", 'Created job "J"'),
        AppendEvent("J", "Stage map scheduled with 2 tasks"),
        AppendEvent("J", "map:0 assigned to n1"),
        StartTask("J", 0, 0, "n1", "map", "split", (0, "a")),
        AppendEvent("J", "map:1 assigned to n1"),
        StartTask("J", 1, 0, "n1", "map", "split", (0, "b")),
    ]


def test_map_reduce_flow_results_and_events():
    h = Harness()
    out = h.submit(
        "J",
        [("map", "split", False), ("reduce", "group_label", False)],
        [(0, ["raw://a"]), (0, ["raw://b"])],
    )
    m0, m1 = starts(out)
    out = h.done(m1, [dir_out("dir://n1/x1", 0, 1)])
    assert texts(out) == ["SYS: [map:1] Received results from n1"]
    out = h.done(m0, [dir_out("dir://n1/x0", 1)])
    assert texts(out)[:3] == [
        "SYS: [map:0] Received results from n1",
        "Stage map finished in 0:00:01.000",
        "Stage reduce scheduled with 2 tasks",
    ]
    r0, r1 = starts(out)
    assert (r0.taskid, r0.group, r1.taskid, r1.group) == (2, (0, ""), 3, (1, ""))
    # outputs of the finished stage are grouped in task-id order
    task = h.c.task("J", 3)
    flag, entries = input_reply(task, "all", [])
    assert flag == "done"
    assert [(e.input_id, e.label, [r.url for r in e.replicas]) for e in entries] == [
        (0, 1, ["dir://n1/x0"]),
        (1, 1, ["dir://n1/x1"]),
    ]
    assert h.c.jobs["J"].stage_results["map"] == [["dir://n1/x0"], ["dir://n1/x1"]]
    h.done(r0, [TaskOutput("data", "disco://n1/r0", 0, 5)])
    out = h.done(r1, [TaskOutput("data", "disco://n1/r1a"), TaskOutput("data", "disco://n1/r1b")])
    assert texts(out)[-1] == "READY: Job done in 0:00:02.000"
    assert JobFinished("J", "ready") in out and SaveJob("J") in out
    job = h.c.jobs["J"]
    assert job.status == "ready"
    assert job.results == [["disco://n1/r0"], ["disco://n1/r1a"], ["disco://n1/r1b"]]
    assert job.counters() == [["map", 0, 0, 0, 2, 0], ["reduce", 0, 0, 0, 2, 0]]


def test_empty_pipeline_and_empty_stage():
    h = Harness()
    out = h.submit("E", [], [(0, ["raw://a", "raw://b"]), (1, ["http://x/y"])])
    assert texts(out)[-1].startswith("READY: Job done in")
    assert h.c.jobs["E"].results == [["raw://a", "raw://b"], ["http://x/y"]]
    out = h.submit("Z", [("map", "split", False), ("reduce", "group_all", False)], [])
    assert "Stage map scheduled with 0 tasks" in texts(out)
    assert "Stage reduce scheduled with 0 tasks" in texts(out)
    assert h.c.jobs["Z"].status == "ready" and h.c.jobs["Z"].results == []


def test_pinning_waits_for_its_node():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    out = h.submit("J", [("map", "split", False)], [(0, ["raw://a"]), (0, ["raw://a"])])
    # both tasks are pinned to "a" (7.3): the second waits although "b" is free
    assert [(s.taskid, s.host) for s in starts(out)] == [(0, "a")]
    assert h.c.jobs["J"].counters() == [["map", 0, 1, 1, 0, 0]]
    out = h.done(starts(out)[0])
    assert [(s.taskid, s.host) for s in starts(out)] == [(1, "a")]


def test_locality_for_unpinned_tasks():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    out = h.submit("J", [("r", "group_all", False)], [(0, ["http://b/x"])])
    assert [(s.host, s.group) for s in starts(out)] == [("b", (0, ""))]


def test_retry_avoids_failed_host_then_fails_job():
    h = Harness(nodes=(("a", 1), ("b", 1)), max_failure_rate=2)
    (s,) = starts(h.submit("J", [("map", "split", False)], [(0, ["raw://x"])]))
    out = h.fail(s, message="oops")
    assert out == [
        AppendEvent("J", "WARNING: [map:0] oops"),
        AppendEvent(
            "J",
            'Task map:0 failed on "a", 1th failures so far. Sleeping 0 seconds before retrying.',
        ),
        ScheduleRetry("J", 0, 0.0),
    ]
    (s2,) = starts(h.feed(RetryDue("J", 0, h.now)))
    assert (s2.host, s2.attempt) == ("b", 1)  # the avoid-list skips "a"
    h.fail(s2)
    (s3,) = starts(h.feed(RetryDue("J", 0, h.now)))
    assert s3.host == "a"  # every live host failed: the avoid-list was cleared
    out = h.fail(s3)
    assert "ERROR: [map:0] Task map:0 failed 3 times. At most 2 failures are allowed." in texts(out)
    assert JobFinished("J", "dead") in out
    assert h.c.jobs["J"].counters() == [["map", 0, 1, 0, 0, 3]]
    assert (h.c.nodes["a"].data_error, h.c.nodes["b"].data_error) == (2, 1)


def test_a_due_retry_goes_before_tasks_queued_after_it():
    """Issue 13: one slot, 3 inputs; task 0 fails while 1 and 2 wait.  When its retry is
    due, it takes the next free slot (0.5 queued it behind 2)."""
    h = Harness(nodes=(("a", 1),))
    (s0,) = starts(
        h.submit("J", [("map", "split", False)], [(i, ["raw://%d" % i]) for i in range(3)])
    )
    (s1,) = starts(h.fail(s0))  # the freed slot goes to task 1; task 0 sleeps
    assert s1.taskid == 1
    assert starts(h.feed(RetryDue("J", 0, h.now))) == []  # no free slot yet
    assert list(h.c.jobs["J"].waiting) == [0, 2]
    (nxt,) = starts(h.done(s1))
    assert (nxt.taskid, nxt.attempt) == (0, 1)


def test_default_retry_policy_first_at_once_then_capped_backoff():
    """Issue 8.3 with the real default policy (no retry_delay): the first retry within
    1 s, later ones back off to at most 10 s; on another node where there is one; the
    0.5 event text shape (10.3) is kept."""
    import random
    import re

    h = Harness(
        nodes=(("a", 1), ("b", 1)), retry_delay=None, max_failure_rate=50, rng=random.Random(7)
    )
    (s,) = starts(h.submit("J", [("map", "split", False)], [(0, ["raw://x"])]))
    delays, hosts = [], [s.host]
    for n in range(1, 13):
        out = h.fail(s)
        (retry,) = [i for i in out if isinstance(i, ScheduleRetry)]
        text = texts(out)[-1]
        assert re.fullmatch(
            r'Task map:0 failed on "%s", %dth failures so far\. '
            r"Sleeping \d+(\.\d{1,3})? seconds before retrying\." % (s.host, n),
            text,
        ), text
        delays.append(retry.delay)
        (s,) = starts(h.feed(RetryDue("J", 0, h.now + retry.delay)))
        hosts.append(s.host)
    assert delays[0] < 1.0
    assert all(0.0 <= d <= 10.0 for d in delays)
    assert delays[-1] >= 5.0  # capped backoff reached: 10 * uniform(0.5, 1)
    assert all(x != y for x, y in zip(hosts, hosts[1:], strict=False))  # the other node


def test_retry_policy_bounds_over_many_seeds():
    import random

    from disco.master.retrypolicy import retry_delay

    for seed in range(200):
        rng = random.Random(seed)
        assert 0.0 <= retry_delay(1, rng) <= 0.5
        assert 0.25 <= retry_delay(2, rng) <= 0.5
        assert 1.0 <= retry_delay(4, rng) <= 2.0
        assert 5.0 <= retry_delay(100, rng) <= 10.0


def test_fatal_kills_the_job_and_its_running_tasks():
    h = Harness()
    s0, s1 = starts(h.submit("J", [("map", "split", False)], [(0, ["raw://x"]), (0, ["raw://y"])]))
    out = h.fail(s0, "fatal", "bad")
    assert out == [
        AppendEvent("J", "FATAL: [map:0] bad"),
        KillTask("J", 1, 0),
        SaveJob("J"),
        JobFinished("J", "dead"),
    ]
    assert h.c.nodes["n1"].error == 2 and h.c.nodes["n1"].running == 0
    assert h.done(s1) == []  # a late report of a killed attempt is ignored


def test_kill_and_forget():
    h = Harness()
    (s,) = starts(h.submit("J", [("map", "split", False)], [(0, ["raw://x"])]))
    out = h.feed(KillRequested("J", h.now))
    assert out == [
        AppendEvent("J", "WARN: Job killed"),
        KillTask("J", 0, 0),
        SaveJob("J"),
        JobFinished("J", "dead"),
    ]
    assert h.feed(KillRequested("J", h.now)) == []  # already dead
    assert h.feed(KillRequested("J", h.now, forget=True)) == [JobForgotten("J")]
    assert "J" not in h.c.jobs
    assert h.feed(KillRequested("nope", h.now)) == []


def test_ready_job_stays_ready_when_killed():
    h = Harness()
    h.submit("E", [], [(0, ["raw://a"])])
    assert h.feed(KillRequested("E", h.now)) == []
    assert h.c.jobs["E"].status == "ready"


def test_concurrent_stage_gets_inputs_as_they_come():
    h = Harness(nodes=(("n1", 4),))
    out = h.submit(
        "J",
        [("map", "split", False), ("reduce", "group_all", True)],
        [(0, ["raw://a"]), (0, ["raw://b"])],
    )
    m0, m1 = starts(out)
    assert "Stage reduce scheduled with 0 tasks" in texts(out)
    out = h.done(m0, [dir_out("dir://n1/x0", 0, 2)])
    # 7.4: the reduce task exists now and may run while 2*0 < 1 map task runs
    (r,) = starts(out)
    reduce = h.c.task("J", 2)
    assert input_reply(reduce, "all", [])[0] == "more"
    assert [e.label for e in input_reply(reduce, "all", [])[1]] == ["all"]
    assert h.c.jobs["J"].counters()[1] == ["reduce", 0, 0, 1, 0, 0]
    out = h.done(m1, [dir_out("dir://n1/x1", 0)])
    assert out.count(InputsChanged("J", 2)) == 2  # a new input, then "done"
    flag, entries = input_reply(h.c.task("J", 2), "exclude", [0])
    assert flag == "done" and [e.input_id for e in entries] == [1]
    h.done(r)
    assert h.c.jobs["J"].status == "ready"


def test_concurrent_stage_waits_while_earlier_stages_idle():
    h = Harness(nodes=(("n1", 1),))
    out = h.submit(
        "J",
        [("map", "split", False), ("reduce", "group_all", True)],
        [(0, ["raw://a"]), (0, ["raw://b"])],
    )
    (m0,) = starts(out)
    out = h.done(m0, [dir_out("dir://n1/x0", 0)])
    # map:1 takes the slot; the reduce task is held back (pending) while 2*0 < 1
    assert [(s.stage, s.taskid) for s in starts(out)] == [("map", 1)]
    (m1,) = starts(out)
    out = h.fail(m1)
    # map:1 sleeps before its retry: 0 map tasks run, so reduce may not run (2*0 < 0 fails)
    assert starts(out) == []
    assert h.c.jobs["J"].counters()[1] == ["reduce", 1, 1, 0, 0, 0]


def test_concurrent_stage_throttle_lets_tasks_run_alongside():
    h = Harness(nodes=(("n1", 8),))
    inputs = [(0, ["raw://%d" % i]) for i in range(4)]
    out = h.submit("J", [("map", "split", False), ("m2", "split", True)], inputs)
    m = starts(out)
    assert len(m) == 4
    out = h.done(m[0], [TaskOutput("data", "raw://o0")])
    # 3 map tasks still run: 2*0 < 3, one m2 task starts
    assert [(s.stage, s.taskid) for s in starts(out)] == [("m2", 4)]
    assert h.c.task("J", 4).inputs_done  # split tasks have their only input at once


def test_max_cores_holds_tasks_pending():
    h = Harness(nodes=(("n1", 4),))
    out = h.submit(
        "J", [("map", "split", False)], [(0, ["raw://%d" % i]) for i in range(3)], max_cores=1
    )
    assert len(starts(out)) == 1
    assert h.c.jobs["J"].counters() == [["map", 2, 2, 1, 0, 0]]
    out = h.done(starts(out)[0])
    assert len(starts(out)) == 1


def test_fifo_serves_the_oldest_job_first():
    h = Harness(nodes=(("n1", 1),), policy="fifo")
    (a,) = starts(h.submit("A", [("map", "split", False)], [(0, ["raw://1"]), (0, ["raw://2"])]))
    assert starts(h.submit("B", [("map", "split", False)], [(0, ["raw://3"])])) == []
    out = h.done(a)
    assert [(s.job, s.taskid) for s in starts(out)] == [("A", 1)]


def test_fair_share_alternates_jobs():
    h = Harness(nodes=(("n1", 1),), policy="fair")
    (a,) = starts(h.submit("A", [("map", "split", False)], [(0, ["raw://1"]), (0, ["raw://2"])]))
    h.submit("B", [("map", "split", False)], [(0, ["raw://3"])])
    out = h.done(a)
    # A got a slot, so its priority was raised by 1/cores: B goes next
    assert [(s.job, s.taskid) for s in starts(out)] == [("B", 0)]


def test_fair_priorities_follow_running_share():
    h = Harness(nodes=(("n1", 2),), alpha=0.5)
    h.submit("A", [("map", "split", False)], [(0, ["raw://1"]), (0, ["raw://2"])])
    h.feed(Tick(h.now))
    # A runs 2 of 2 slots, 1 job: prio = 0.5 * (2/2 - 1/1) + 0.5 * 0 = 0
    assert h.c.jobs["A"].priority == 0.0 and h.c.jobs["A"].boost == 0.0


def test_blacklisted_node_gets_no_tasks():
    h = Harness(nodes=(("a", 1), ("b", 1)), blacklist=("a",))
    out = h.submit("J", [("map", "split", False)], [(0, ["raw://a"]), (0, ["raw://b"])])
    assert [(s.taskid, s.host) for s in starts(out)] == [(0, "b")]


def test_node_lost_fails_running_tasks_and_retries_elsewhere():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    s0, s1 = starts(h.submit("J", [("map", "split", False)], [(0, ["raw://a"]), (0, ["raw://b"])]))
    out = h.feed(NodeLost("a", h.now))
    assert KillTask("J", 0, 0) in out
    assert "WARNING: [map:0] Connection lost to the node (network busy?)" in texts(out)
    out = h.feed(RetryDue("J", 0, h.now))
    assert starts(out) == []  # "b" is busy; "a" is disconnected
    (s,) = starts(h.done(s1))
    assert (s.taskid, s.host) == (0, "b")


def test_removed_node_keeps_running_tasks_visible():
    h = Harness(nodes=(("a", 1), ("b", 1)))
    s0, _ = starts(h.submit("J", [("map", "split", False)], [(0, ["raw://a"]), (0, ["raw://b"])]))
    h.feed(NodesConfigured((("b", 1),), frozenset(), frozenset({"b"})))
    assert h.c.nodes["a"].connected is False and h.c.running_on("a") == ["J"]
    h.done(s0)
    assert "a" not in h.c.nodes


def test_dir_inputs_are_resolved_then_split_by_label():
    h = Harness()
    url = "dir://n1/disco/n1/aa/J0/.disco/map-0-1.results"
    out = h.submit("J", [("map", "split", False)], [DirInput(url)])
    assert ResolveInputs("J", (url,)) in out and starts(out) == []
    out = h.feed(InputsResolved("J", {url: ((3, 10), (1, 5))}, h.now))
    assert [(s.group, s.host) for s in starts(out)] == [((3, "n1"), "n1"), ((1, "n1"), "n1")]
    flag, entries = input_reply(h.c.task("J", 0), "all", [])
    assert [(e.label, [r.url for r in e.replicas]) for e in entries] == [(3, [url])]


def test_input_errors_order_replicas_and_fail():
    h = Harness()
    (s,) = starts(
        h.submit("J", [("r", "group_all", False)], [(0, ["raw://a", "raw://b", "raw://c"])])
    )
    h.feed(InputFailed("J", 0, 0, (0,), h.now))
    task = h.c.task("J", 0)
    assert [r.url for r in retry_replicas(task, 0, [0])] == ["raw://b", "raw://c"]
    h.now += 1
    h.feed(InputFailed("J", 0, 0, (1,), h.now))
    # never-failed first, then least recently failed
    assert [r.url for r in input_reply(task, "include", [0])[1][0].replicas] == [
        "raw://c",
        "raw://a",
        "raw://b",
    ]
    assert retry_replicas(task, 0, [0, 1, 2]) is None


def test_settings_change_the_failure_limit():
    h = Harness(nodes=(("a", 1),))
    h.feed(SettingsChanged(0, h.now))
    (s,) = starts(h.submit("J", [("map", "split", False)], [(0, ["raw://x"])]))
    out = h.fail(s)
    assert JobFinished("J", "dead") in out


def test_format_duration():
    assert format_duration(3723.4567) == "1:02:03.457"
    assert format_duration(0) == "0:00:00.000"


# -- save_results (ddfs.md 7.2) ----------------------------------------------------------
def saved_job(h, name="J"):
    out = h.submit(name, [("map", "split", False)], [(0, ["raw://a"])], save_results=True)
    [m0] = starts(out)
    assert m0.save_results  # the last stage's tasks upload their outputs
    blob = TaskOutput(
        "data", "disco://n1/ddfs/b1", replicas=("disco://n1/ddfs/b1", "disco://n2/ddfs/b1")
    )
    return h.done(m0, [blob])


def test_a_saved_job_is_ready_once_its_results_tag_is_written():
    from disco.master.states import ResultsSaved, SaveResults

    h = Harness()
    out = saved_job(h)
    assert SaveResults("J", (("disco://n1/ddfs/b1", "disco://n2/ddfs/b1"),)) in out
    assert "Saving the results in DDFS tag disco:results:J" in texts(out)
    assert not any(isinstance(i, JobFinished) for i in out)
    assert h.c.jobs["J"].status == "active"
    h.feed(Tick(h.now))  # nothing else happens meanwhile
    out = h.feed(ResultsSaved("J", None, h.now + 1))
    assert h.c.jobs["J"].status == "ready"
    assert h.c.jobs["J"].results == ["tag://disco:results:J"]
    assert JobFinished("J", "ready") in out
    assert any(t.startswith("READY: Job done in") for t in texts(out))


def test_a_failed_results_tag_makes_the_job_dead():
    from disco.master.states import ResultsSaved

    h = Harness()
    saved_job(h)
    out = h.feed(ResultsSaved("J", "500 replication_failed", h.now))
    assert texts(out) == ["ERROR: Saving the results in DDFS failed: 500 replication_failed"]
    assert JobFinished("J", "dead") in out
    assert h.c.jobs["J"].status == "dead"
    assert h.feed(ResultsSaved("J", None, h.now)) == []  # a late answer changes nothing


def test_a_job_killed_while_saving_stays_dead():
    from disco.master.states import ResultsSaved

    h = Harness()
    saved_job(h)
    h.feed(KillRequested("J", h.now))
    assert h.c.jobs["J"].status == "dead"
    h.feed(ResultsSaved("J", None, h.now))
    assert h.c.jobs["J"].status == "dead"


def test_hdfs_save_info_does_not_upload_to_ddfs():
    h = Harness()
    job = spec([("map", "split", False)], [(0, ["raw://a"])], save_results=True)
    job = JobSpec(**{**job.__dict__, "save_info": "hdfs,nn:50070,user,/dir"})
    [m0] = starts(h.feed(JobSubmitted("H", job, h.now)))
    assert not m0.save_results
    out = h.done(m0, [dir_out("dir://n1/x", 0)])
    assert h.c.jobs["H"].status == "ready"
    assert any("Results are not saved: save_info 'hdfs," in t for t in texts(out))


def test_a_slot_is_free_once_the_attempts_worker_has_exited():
    h = Harness(nodes=(("n1", 1),))
    [first] = starts(h.submit("j", [("map", "split", False)], [(0, ["raw://a"]), (1, ["raw://b"])]))
    assert first.taskid == 0
    # the worker of task 0 sent DONE and ended: task 1 takes the slot, task 0 still runs
    [second] = starts(h.feed(AttemptExited("j", 0, first.attempt, h.now)))
    assert second.taskid == 1
    assert h.c.jobs["j"].tasks[0].state == "running"
    assert h.c.nodes["n1"].running == 1
    assert h.feed(AttemptExited("j", 0, first.attempt, h.now)) == []  # told twice: once
    assert h.feed(AttemptExited("j", 1, 7, h.now)) == []  # not its attempt: ignored
    h.done(first)  # the slot is not given back a second time
    assert h.c.nodes["n1"].running == 1
    h.feed(AttemptExited("j", 1, second.attempt, h.now))
    assert h.c.nodes["n1"].running == 0
    h.fail(second)  # failed after its exit (its index could not be synced): retried
    [again] = starts(h.feed(RetryDue("j", 1, h.now)))
    assert (again.taskid, again.attempt) == (1, second.attempt + 1)
    assert h.c.nodes["n1"].running == 1
