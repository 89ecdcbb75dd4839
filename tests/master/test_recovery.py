"""Rebuilding a running job after a master restart (``disco.master.recovery``).

The coordinator part is pure: a job runs part way in one coordinator, the finished tasks
are saved as the runtime saves them (``recovery.done_task`` for every ``SaveTask``), and a
new coordinator given ``JobRestored`` must rebuild the same tasks with the same ids, mark
the finished ones done and start only the others.  The end-to-end tests with a real
master killed with SIGKILL are in ``tests/faults/test_master_restart.py``.
"""

from __future__ import annotations

import json
import os
from typing import Any

from disco.embedded import EmbeddedMaster
from disco.master import recovery
from disco.master.jobpack import DirInput
from disco.master.states import (
    AttemptDone,
    ForgetTask,
    InputsResolved,
    JobRestored,
    NodeLost,
    ResolveInputs,
    RestoredTask,
    SaveTask,
)
from disco.master.store import Store
from tests.conftest import poll_for

from .packs import WORKER_SH, make_pack, v2_dict
from .test_api import Client
from .test_coordinator import Harness, dir_out, spec, starts, texts

CONCURRENT = [("map", "split", False), ("red", "split", True), ("sum", "group_all", False)]
INPUTS = [(0, ["raw://a"]), (0, ["raw://b"]), (0, ["raw://c"])]


class Saved:
    """What the runtime would have saved: one row per ``SaveTask``, in order."""

    def __init__(self, h: Harness) -> None:
        self.h = h
        self.rows: list[RestoredTask] = []

    def feed(self, out: list) -> list:
        for ins in out:
            if isinstance(ins, ForgetTask):  # the runtime deletes the row (node loss)
                self.rows = [r for r in self.rows if r.taskid != ins.taskid]
            if isinstance(ins, SaveTask):
                row = recovery.done_task(self.h.c.task(ins.job, ins.taskid))
                outputs = tuple(recovery.output_from_json(o) for o in row.outputs)
                self.rows.append(
                    RestoredTask(row.taskid, row.signature, row.attempt, row.host, outputs)
                )
        return out


def states(h: Harness, job: str) -> dict[int, str]:
    return {t.taskid: t.state for t in h.c.jobs[job].tasks.values()}


def test_output_json_round_trip():
    outs = [
        dir_out("dir://n1/disco/n1/ab/J/.disco/map-0-1.results", 0, 3),
        recovery.TaskOutput("data", "tag://x", 2, 5, replicas=("http://a/1", "http://b/1")),
    ]
    assert [recovery.output_from_json(recovery.output_to_json(o)) for o in outs] == outs


def test_concurrent_stages_rebuilt_with_the_same_tasks():
    h = Harness(nodes=(("n1", 10),))
    saved = Saved(h)
    m0, m1, m2 = starts(saved.feed(h.submit("J", CONCURRENT, INPUTS)))
    # map:2 finishes first, then map:0: the concurrent stage gets red:3, red:4 in that order
    r3 = starts(saved.feed(h.done(m2, [dir_out("dir://n1/m2", 0)])))[0]
    saved.feed(h.done(m0, [dir_out("dir://n1/m0", 0)]))
    r4 = starts(saved.feed(h.done(r3, [dir_out("dir://n1/r3", 0)])))[0]
    assert (r3.taskid, r4.taskid) == (3, 4)
    assert h.c.jobs["J"].tasks[4].inputs[0].urls == ("dir://n1/m0",)
    assert states(h, "J") == {0: "done", 1: "running", 2: "done", 3: "done", 4: "running"}

    again = Harness(nodes=(("n1", 10),))
    out = again.feed(JobRestored("J", spec(CONCURRENT, INPUTS), 900.0, tuple(saved.rows), 1e3))
    assert states(again, "J") == {0: "done", 1: "running", 2: "done", 3: "done", 4: "running"}
    assert [(s.taskid, s.stage, s.attempt) for s in starts(out)] == [(1, "map", 0), (4, "red", 0)]
    assert "Job restored after a master restart: 3 finished task(s) kept, the others run again" in (
        texts(out)
    )
    job, old = again.c.jobs["J"], h.c.jobs["J"]
    assert job.submitted == 900.0
    for taskid, task in job.tasks.items():
        assert (task.stage, task.inputs, task.outputs) == (
            old.tasks[taskid].stage,
            old.tasks[taskid].inputs,
            old.tasks[taskid].outputs,
        )
    # the rest of the job runs as it would have
    m1, r4 = starts(out)
    again.done(m1, [dir_out("dir://n1/m1", 0)])
    again.done(r4, [dir_out("dir://n1/r4", 0)])
    r5 = [t for t in again.c.jobs["J"].tasks.values() if t.stage == "red" and t.state == "running"]
    assert [t.taskid for t in r5] == [5]
    (last,) = starts(again.feed(AttemptDone("J", 5, 0, (dir_out("dir://n1/r5", 0),), 1, 1e3)))
    assert (last.taskid, last.stage) == (6, "sum")
    urls = [i.urls for i in again.c.jobs["J"].tasks[6].inputs]
    assert urls == [("dir://n1/r3",), ("dir://n1/r4",), ("dir://n1/r5",)]
    again.done(last, [dir_out("dir://n1/sum", 0)])
    assert again.c.jobs["J"].status == "ready"


def test_a_task_that_is_no_longer_the_same_runs_again():
    h = Harness()
    saved = Saved(h)
    m0, m1 = starts(saved.feed(h.submit("J", CONCURRENT[:1], INPUTS[:2])))
    saved.feed(h.done(m0, [dir_out("dir://n1/m0", 0)]))
    saved.feed(h.done(m1, [dir_out("dir://n1/m1", 0)]))
    # the job's inputs differ from what map:1 read (or the nodes changed its group)
    wrong = [saved.rows[0], RestoredTask(1, "0" * 40, 0, "n1", saved.rows[1].outputs)]
    again = Harness()
    out = again.feed(JobRestored("J", spec(CONCURRENT[:1], INPUTS[:2]), 900.0, tuple(wrong), 1e3))
    assert states(again, "J") == {0: "done", 1: "running"}
    assert [s.taskid for s in starts(out)] == [1]


def test_dir_inputs_are_read_again_before_the_replay():
    pipeline = [("map", "split", False)]
    inputs = [DirInput("dir://n1/idx")]
    h = Harness()
    saved = Saved(h)
    assert h.submit("J", pipeline, inputs)[-1] == ResolveInputs("J", ("dir://n1/idx",))
    labels = {"dir://n1/idx": ((0, 5), (1, 7))}
    m0, m1 = starts(saved.feed(h.feed(InputsResolved("J", labels, h.now))))
    saved.feed(h.done(m1, [dir_out("dir://n1/m1", 0)]))

    again = Harness()
    out = again.feed(JobRestored("J", spec(pipeline, inputs), 900.0, tuple(saved.rows), 1e3))
    assert out[-1] == ResolveInputs("J", ("dir://n1/idx",)) and not starts(out)
    out = again.feed(InputsResolved("J", labels, again.now))
    assert [s.taskid for s in starts(out)] == [0]
    assert states(again, "J") == {0: "running", 1: "done"}


def test_outputs_lost_with_a_node_do_not_come_back_after_a_restart():
    """A node is lost, its finished map runs again; the master restarts before the
    re-run finished: the restored job runs that map again (its saved row was deleted),
    even if the node came back with its old files."""
    h = Harness(nodes=(("n1", 1), ("n2", 1)))
    saved = Saved(h)
    pipeline = [("map", "split", False), ("red", "group_all", False)]
    m0, m1 = starts(saved.feed(h.submit("J", pipeline, INPUTS[:2])))
    assert (m0.host, m1.host) == ("n1", "n2")
    saved.feed(h.done(m0, [dir_out("dir://n1/m0", 0)]))
    saved.feed(h.done(m1, [dir_out("dir://n2/m1", 0)]))
    out = saved.feed(h.feed(NodeLost("n2", h.now)))
    assert ForgetTask("J", m1.taskid) in out
    assert [r.taskid for r in saved.rows] == [m0.taskid]

    again = Harness(nodes=(("n1", 1), ("n2", 1)))
    out = again.feed(JobRestored("J", spec(pipeline, INPUTS[:2]), 900.0, tuple(saved.rows), 1e3))
    assert [s.taskid for s in starts(out)] == [m1.taskid]
    assert states(again, "J") == {0: "done", 1: "running"}


def test_store_forgets_one_task(tmp_path):
    store = Store(str(tmp_path / "root"), str(tmp_path / "config"))
    rows = [recovery.DoneTask("J", i, 0, "n1", "s%d" % i, []) for i in range(3)]
    store.save_tasks(rows)
    store.forget_task("J", 1)
    assert store.load_tasks("J") == [rows[0], rows[2]]
    store.close()


def test_store_keeps_finished_tasks_in_order_and_forgets_them(tmp_path):
    store = Store(str(tmp_path / "root"), str(tmp_path / "config"))
    rows = [
        recovery.DoneTask("J", 4, 0, "n1", "s4", [["dir", "dir://a", 0, 1, [[0, 1]], []]]),
        recovery.DoneTask("K", 0, 1, "n2", "s0", []),
        recovery.DoneTask("J", 1, 2, "n1", "s1", []),
    ]
    store.save_tasks(rows[:2])
    store.save_tasks(rows[2:])
    assert store.load_tasks("J") == [rows[0], rows[2]]
    store.forget_tasks("J")
    assert store.load_tasks("J") == [] and store.load_tasks("K") == [rows[1]]
    store.delete_job("K")
    assert store.load_tasks("K") == []
    store.close()


def test_store_commits_a_single_finished_task_at_once(tmp_path):
    """One finished task (the usual save: one per feed) is one autocommit statement:
    committed when ``save_tasks`` returns, as a batch is (another connection sees it)."""
    import sqlite3

    store = Store(str(tmp_path / "root"), str(tmp_path / "config"))
    row = recovery.DoneTask("J", 7, 1, "n1", "s7", [["dir", "dir://a", 0, 1, [[0, 1]], []]])
    store.save_tasks([row])
    other = sqlite3.connect(store.path)
    assert other.execute("SELECT taskid, attempt FROM done_tasks").fetchall() == [(7, 1)]
    other.close()
    assert not store._db.in_transaction
    assert store.load_tasks("J") == [row]
    store.close()


MAP_THEN_REDUCE = [["map", "split", False], ["r", "group_all", False]]


def submit_with_a_blocked_reduce(client: Any, inputs: list[Any]) -> str:
    """Submit a job of ``MAP_THEN_REDUCE`` over ``inputs`` whose reduce blocks (until the
    job is killed); its name, once every map task is done."""
    worker = WORKER_SH.replace('case "${MODE', '[ "$stage" = r ] && exec sleep 60\ncase "${MODE')
    pack = make_pack(v2_dict(MAP_THEN_REDUCE, inputs), files={"worker.sh": worker})
    name = json.loads(client.request("/disco/job/new", pack)[2])[1]
    poll_for(lambda: client.get("/disco/ctrl/jobinfo?name=" + name)["pipeline"][1][3] == 1)
    return name


def test_finished_tasks_are_saved_while_the_job_runs_and_forgotten_after(tmp_path):
    with EmbeddedMaster(root=tmp_path / "disco", export_env=False, retry_delay=0.0) as m:
        client = Client(m)
        store = m.server.store
        inputs = [[0, 0, ["raw://a"]], [0, 0, ["raw://b"]]]
        # the second stage blocks while the job is watched, then the job is killed
        name = submit_with_a_blocked_reduce(client, inputs)
        rows = store.load_tasks(name)
        assert sorted(r.taskid for r in rows) == [0, 1]
        assert all(r.outputs[0][0] == "dir" for r in rows)
        client.post("kill_job", name)
        poll_for(lambda: store.load_tasks(name) == [], 10, "the rows of the killed job to go")
        done = client.submit(v2_dict(MAP_THEN_REDUCE, inputs))
        assert client.wait(done)[0] == "ready"
        assert store.load_tasks(done) == []  # the job ended: nothing left to restore


def test_a_finished_task_whose_outputs_are_gone_runs_again(tmp_path):
    """A restart keeps a finished task only if its index file and the files it lists are
    still on the node."""
    root = tmp_path / "disco"
    inputs = [[0, 0, ["raw://a"]], [0, 0, ["raw://b"]], [0, 0, ["raw://c"]]]
    with EmbeddedMaster(root=root, export_env=False, retry_delay=0.0) as m:
        client = Client(m)
        name = submit_with_a_blocked_reduce(client, inputs)
        rows = {r.taskid: r for r in m.server.store.load_tasks(name)}
    # the index of map:0 is lost, and one data file listed by the index of map:1
    lost_index = rows[0].outputs[0][1].split("/disco/", 1)[1]
    os.remove(os.path.join(root, "data", lost_index))
    index_of_1 = os.path.join(root, "data", rows[1].outputs[0][1].split("/disco/", 1)[1])
    with open(index_of_1, encoding="utf-8") as f:
        data_url = f.read().split()[1]
    os.remove(os.path.join(root, "data", data_url.split("/disco/", 1)[1]))
    with EmbeddedMaster(root=root, export_env=False, retry_delay=0.0) as m:
        client = Client(m)
        poll_for(lambda: client.get("/disco/ctrl/jobinfo?name=" + name)["pipeline"][1][3] == 1)
        events = [e[2] for e in client.events(name)]
        assert any("1 finished task(s) kept" in e for e in events)
        assigned = [e.split(" assigned")[0] for e in events if " assigned to " in e]
        assert sorted(assigned) == ["map:0", "map:0", "map:1", "map:1", "map:2", "r:3", "r:3"]
        client.post("kill_job", name)


def test_a_store_that_is_not_durable_saves_no_finished_tasks():
    """An embedded master in its own temporary directory (its store is deleted when it
    stops, never read by a restart) does not save finished tasks for recovery: no SQLite
    write per task.  The job runs as usual."""
    with EmbeddedMaster(export_env=False, retry_delay=0.0) as m:
        assert not m.server.store.durable
        client = Client(m)
        store = m.server.store
        name = submit_with_a_blocked_reduce(client, [[0, 0, ["raw://a"]], [0, 0, ["raw://b"]]])
        assert store.load_tasks(name) == []  # the reduce runs: both maps are done
        client.post("kill_job", name)
