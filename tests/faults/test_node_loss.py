"""A node lost mid-job (issue 9, part E): the job still ends ``ready``, exact.

Real master, local backend, two simulated nodes (127.0.0.2, 127.0.0.3), real workers.
A word count's map stage finishes on both nodes; while its reduces run (held on a file
the test controls), node 127.0.0.3 is lost for real: its data server stops, its
``DISCO_DATA/127.0.0.3`` subtree is deleted, and the master learns it either from the
config table (the node is dropped) or from the backend (``is_connected`` turns false,
``LocalBackend.set_away``).  The maps whose outputs were there run again on 127.0.0.2,
the reduces get the new URLs, the answer is exact, and the events say which tasks ran
again and why.  Disco 0.5 failed such a job (master-api.md 10.4).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections import Counter
from typing import Any

import pytest

from disco.core import Disco, result_iterator
from disco.embedded import EmbeddedMaster
from disco.job import Job
from tests.conftest import poll_for
from tests.faults.jobs import gated_count_reduce, words_map

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("no_leaked_workers")]

KEPT, LOST = "127.0.0.2", "127.0.0.3"
WORDS = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "sloe"]
INPUTS = ["raw://" + ",".join(WORDS[i % 8 :] + WORDS[: i % 8][:i]) for i in range(8)]


def expected() -> list[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for inp in INPUTS:
        counts.update(inp[len("raw://") :].split(","))
    return sorted(counts.items())


def events(m: EmbeddedMaster, name: str) -> list[str]:
    return [text for _offset, (_ts, _host, text) in Disco(m.url).events(name)]


def event_times(m: EmbeddedMaster, name: str) -> list[tuple[str, str]]:
    return [(ts, text) for _offset, (ts, _host, text) in Disco(m.url).events(name)]


def on_loop(m: EmbeddedMaster, coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, m._loop).result(30)


def run_wordcount(m: EmbeddedMaster, started: str, go: str) -> Job:
    """The word count of ``INPUTS``; each reduce leaves a file in ``started``, then
    waits for the file ``go``."""
    return Job(master=m.url).run(
        input=INPUTS,
        map=words_map,
        reduce=gated_count_reduce,
        partitions=2,
        sort=False,
        params={"started": started, "go": go},
    )


def start_held_wordcount(m: EmbeddedMaster, tmp_path) -> tuple[Job, str, str]:
    """The word count, its map stage done on both nodes and its 2 reduces started."""
    started, go = tmp_path / "started", tmp_path / "go"
    started.mkdir()
    job = run_wordcount(m, str(started), str(go))
    poll_for(lambda: len(os.listdir(started)) >= 2, 120, "both reduces to start")
    texts = events(m, job.name)
    for host in (KEPT, LOST):
        assert any(
            re.match(r"SYS: \[map:\d+\] Received results from %s$" % re.escape(host), t)
            for t in texts
        ), "no map finished on %s: %s" % (host, texts)
    return job, str(go), str(started)


def lose_data(m: EmbeddedMaster) -> None:
    """The node's outputs really go: its data server stops, its data is deleted."""
    assert on_loop(m, m.server.backend.stop_data_server(LOST))
    shutil.rmtree(os.path.join(m.server.config.disco_data, LOST))


def done_on(texts: list[str], host: str) -> set[str]:
    """The tasks (``map:N``, ``map_shuffle:N``) that finished on ``host``."""
    pattern = re.compile(r"SYS: \[(map\w*:\d+)\] Received results from %s$" % re.escape(host))
    return {mt.group(1) for t in texts if (mt := pattern.match(t))}


def check_recovered(m: EmbeddedMaster, job: Job, lost_tasks: set[str]) -> list[str]:
    """Exact answer, results on the kept node only, and the events of the re-runs.

    The classic job is map, map_shuffle, reduce: the maps and the map_shuffle that had
    finished on the lost node run again (the map_shuffle needs the maps' outputs, the
    reduces need the map_shuffle's)."""
    results = job.wait(poll_interval=0.1, timeout=180)
    assert Disco(m.url).jobinfo(job.name)["active"] == "ready"
    assert sorted((k, int(v)) for k, v in result_iterator(results)) == expected()
    assert all(LOST not in url for r in results for url in ([r] if isinstance(r, str) else r))
    texts = events(m, job.name)
    why = re.compile(
        r"WARN: \[(map\w*:\d+)\] its outputs were lost with node %s and stage (\w+) still "
        r"needs them: it runs again on another node$" % re.escape(LOST)
    )
    rerun = {mt.group(1) for t in texts if (mt := why.match(t))}
    assert rerun == lost_tasks, "\n".join(texts)
    maps = sum(t.startswith("map:") for t in lost_tasks)
    assert "Stage map reopened: %d task(s) run again" % maps in texts
    # every reduce that was running stopped (its node went, or its input did)
    stopped = [t for t in texts if re.match(r"WARNING: \[reduce:\d+\] stopped: its input", t)]
    node_failed = [t for t in texts if re.match(r'Task reduce:\d+ failed on "%s"' % LOST, t)]
    assert len(stopped) + len(node_failed) == 2, "\n".join(texts)
    # the re-runs ran on the node that is left, and nothing counted as a task failure
    for task in lost_tasks:
        assigned = [t for t in texts if t.startswith(task + " assigned to ")]
        assert assigned[-1] == "%s assigned to %s" % (task, KEPT), assigned
    assert Disco(m.url).jobinfo(job.name)["failed_attempts"] == []
    return texts


def test_node_dropped_from_the_config_table_while_reduces_run(tmp_path) -> None:
    nodes = [(KEPT, 2), (LOST, 2)]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes, retry_delay=0.0) as m:
        job, go, _started = start_held_wordcount(m, tmp_path)
        lost_tasks = done_on(events(m, job.name), LOST)
        lose_data(m)
        t0 = time.time()
        Disco(m.url).set_config([[KEPT, "2"]])
        # the loss is handled at once: no saved task of the job is on the lost node
        poll_for(
            lambda: any(t.startswith("Stage map reopened") for t in events(m, job.name)),
            30,
            "the map stage to reopen",
        )
        saved = m.call(lambda: m.server.store.load_tasks(job.name))
        assert not [t for t in saved if t.host == LOST]
        open(go, "w").close()
        texts = check_recovered(m, job, lost_tasks)
        took = time.time() - t0
        print(
            "\nnode loss (config table): re-ran %s; %.2f s from the loss to the answer checked"
            % (", ".join(sorted(lost_tasks)), took)
        )
        print("\n".join(t for t in texts if not t.startswith(("MSG:", "DONE:", "SYS:"))))
        assert m.call(lambda: LOST not in m.server.runtime.coordinator.nodes)
        assert "ERROR" not in " ".join(texts)


def make_gone(m: EmbeddedMaster, how: str, gone: bool) -> None:
    """``away``: ``is_connected`` turns false; ``node_set``: the host leaves the
    backend's node set (``Backend.node_set()``, as a Dask backend's would)."""
    backend = m.server.backend
    if how == "away":
        m.call(backend.set_away, LOST, gone)
    else:
        members = {KEPT: 2} if gone else {KEPT: 2, LOST: 2}
        m.call(setattr, backend, "node_set", lambda: dict(members))


@pytest.mark.parametrize("how", ["away", "node_set"])
def test_node_gone_while_reduces_run_then_back(tmp_path, how: str) -> None:
    nodes = [(KEPT, 2), (LOST, 2)]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes, retry_delay=0.0) as m:
        backend = m.server.backend
        job, go, started = start_held_wordcount(m, tmp_path)
        lost_tasks = done_on(events(m, job.name), LOST)
        lose_data(m)
        make_gone(m, how, True)
        # the once-a-second poll sees the node gone
        poll_for(
            lambda: any(t.startswith("Stage map reopened") for t in events(m, job.name)),
            30,
            "the master to see the node lost",
        )
        assert Disco(m.url).nodeinfo()[LOST]["connected"] is False
        open(go, "w").close()
        check_recovered(m, job, lost_tasks)
        # the node comes back (with an empty disk): it takes work again (a host that
        # joins the node set is a new node: the backend starts its data server)
        if how == "away":
            on_loop(m, backend.start_data_server(LOST))
        make_gone(m, how, False)
        poll_for(lambda: Disco(m.url).nodeinfo()[LOST]["connected"], 30, "the node to be back")
        again = run_wordcount(m, started, go)
        results = again.wait(poll_interval=0.1, timeout=180)
        assert sorted((k, int(v)) for k, v in result_iterator(results)) == expected()
        assert any(t.endswith(" assigned to %s" % LOST) for t in events(m, again.name))


def test_node_gone_while_the_reduces_read_its_outputs(tmp_path, caplog) -> None:
    """The reduces read the lost node's outputs at once: the first INPUT_ERR (or the
    once-a-second poll, whichever comes first) tells the master; no attempt fails."""
    nodes = [(KEPT, 2), (LOST, 2)]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes, retry_delay=0.0) as m:
        job, go, _started = start_held_wordcount(m, tmp_path)
        lost_tasks = done_on(events(m, job.name), LOST)
        lose_data(m)
        with caplog.at_level("WARNING", logger="disco.master.runtime"):
            m.call(m.server.backend.set_away, LOST, True)
            open(go, "w").close()  # the reduces read now
            check_recovered(m, job, lost_tasks)
        why = [r.getMessage() for r in caplog.records if "node %s lost" % LOST in r.getMessage()]
        assert len(why) == 1, why
        print("\nnode loss learnt from: %s" % why[0])
