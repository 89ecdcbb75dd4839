"""Partial outputs of a failed attempt are deleted when the attempt ends (issue 8, 4).

Real worker processes (sh scripts speaking the protocol) write the way the Python
worker does: a scratch directory ``<hh>/<stage>:<group>-<taskid>-<hash>-<pid>`` in the
job home, then OUTPUT.  A failed or killed attempt leaves none of it; a finished one
keeps everything.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from disco.backends.base import TaskDone, TaskFailed
from disco.node.partial import remove_partial_outputs
from disco.node.runner import WorkerLimits, run_worker
from disco.task import Task, is_scratch_of
from tests.node.helpers import Channel, install_worker, make_spec, wait_until

pytestmark = pytest.mark.timeout(60)

FAST = WorkerLimits(pid_timeout=10, message_timeout=10, last_words_timeout=2)

# Writes 5000 bytes into its own scratch directory (taskid 3, named with its pid, as
# disco.task.Task names it) and reports it; a sibling directory of another attempt
# (another pid) must survive.
WRITE = r"""
hello
send TASK '""'; recv
mkdir -p ab/map:0-node1-3-5f-$$ cd/map:0-node1-3-5f-1
head -c 5000 /dev/zero > ab/map:0-node1-3-5f-$$/out-0
echo keep > cd/map:0-node1-3-5f-1/other
send OUTPUT "[0,\"ab/map:0-node1-3-5f-$$/out-0\",5000]"; recv
head -c 700 /dev/zero > loose-output
send OUTPUT '[1,"loose-output",700]'; recv
touch written
"""


def _run(tmp_path, body: str, *, cancel_after_write: bool = False):
    spec = make_spec(tmp_path)
    home = install_worker(spec, body)

    async def go():
        task = asyncio.ensure_future(run_worker(spec, Channel(), home, limits=FAST))
        if not cancel_after_write:
            return await task
        await asyncio.to_thread(
            wait_until, lambda: os.path.exists(os.path.join(home, "written")), 30, "the write"
        )
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return None

    return asyncio.run(go()), home


def _scratch(home: str) -> list[str]:
    found = []
    for bucket in ("ab", "cd"):
        folder = os.path.join(home, bucket)
        if os.path.isdir(folder):
            found += ["%s/%s" % (bucket, n) for n in os.listdir(folder)]
    return found


def _indexes(home: str) -> list[str]:
    folder = os.path.join(home, ".disco")
    return os.listdir(folder) if os.path.isdir(folder) else []


def test_failed_attempt_leaves_no_partial_outputs(tmp_path):
    result, home = _run(tmp_path, WRITE + "send ERROR '\"disk trouble\"'\nsleep 30\n")
    assert isinstance(result, TaskFailed), result
    assert result.partial_bytes >= 5700
    assert _scratch(home) == ["cd/map:0-node1-3-5f-1"]  # another attempt's files stay
    assert not os.path.exists(os.path.join(home, "loose-output"))
    assert _indexes(home) == []


def test_crashed_attempt_leaves_no_partial_outputs(tmp_path):
    result, home = _run(tmp_path, WRITE + "exit 3\n")
    assert isinstance(result, TaskFailed), result
    assert _scratch(home) == ["cd/map:0-node1-3-5f-1"]
    assert not os.path.exists(os.path.join(home, "loose-output"))


def test_killed_attempt_leaves_no_partial_outputs(tmp_path):
    result, home = _run(tmp_path, WRITE + "sleep 60\n", cancel_after_write=True)
    assert result is None
    assert _scratch(home) == ["cd/map:0-node1-3-5f-1"]
    assert not os.path.exists(os.path.join(home, "loose-output"))


def test_finished_attempt_keeps_its_outputs(tmp_path):
    result, home = _run(tmp_path, WRITE + "send DONE '\"\"'\nsleep 30\n")
    assert isinstance(result, TaskDone), result
    assert len(_scratch(home)) == 2
    assert os.path.getsize(os.path.join(home, "loose-output")) == 700
    assert len(_indexes(home)) == 1


def test_outputs_outside_the_job_home_are_never_deleted(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    outside = tmp_path / "precious"
    outside.write_text("x")
    freed = remove_partial_outputs(str(home), 3, {1}, [str(home / ".." / "precious")])
    assert freed == 0 and outside.read_text() == "x"


def test_scratch_name_matches_the_python_task_uid():
    task = Task(host="node1", jobname="J@1:2:3", stage="map", group=[0, "node1"], taskid=7)
    assert is_scratch_of(task.uid, 7, os.getpid())
    assert not is_scratch_of(task.uid, 17, os.getpid())
    assert not is_scratch_of(task.uid, 7, os.getpid() + 1)
