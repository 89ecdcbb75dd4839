"""A node's slot goes to the next task at DONE (master-api.md 8.7), as 0.5's node did:
not when the killed worker's exit has been reported, nor when the index file is synced."""

from __future__ import annotations

import re

from disco.core import Disco, Job, result_iterator
from disco.embedded import EmbeddedMaster


def square_map(e, params):
    yield e, int(e) ** 2


def _order(events: list[str], taskid: int) -> tuple[int, int]:
    """Indexes (oldest first) of task ``taskid``'s DONE line and of the next task's
    assignment line."""
    done = assigned = -1
    for i, line in enumerate(events):
        if re.search(r"DONE: \[map:%d\] Task finished" % taskid, line):
            done = i
        if re.search(r"map:%d assigned to " % (taskid + 1), line):
            assigned = i
    return done, assigned


def test_the_next_task_is_assigned_at_done_before_the_task_finishes() -> None:
    # one slot; the embedded master's own root (the index is written on the loop), so
    # with the slot given back only when the worker's exit was reported, each task's
    # DONE line would come before the next task's assignment
    with EmbeddedMaster(nodes=[("localhost", 1)], retry_delay=0.0) as m:
        job = Job(master=m.url, name="slot_at_done").run(
            input=["raw://%d" % i for i in range(4)], map=square_map
        )
        results = job.wait(timeout=120)
        assert sorted((k, int(v)) for k, v in result_iterator(results)) == [
            (str(i), i * i) for i in range(4)
        ]
        events = [msg for _offset, (_ts, _host, msg) in Disco(m.url).events(job.name)]
        for taskid in range(3):
            done, assigned = _order(events, taskid)
            assert done >= 0 and assigned >= 0, events
            assert assigned < done, "map:%d was assigned only after map:%d's DONE:\n%s" % (
                taskid + 1,
                taskid,
                "\n".join(events),
            )
