"""The worker registry's file of a warm process (disco.node.orphans): the sessions it
lists as live when its owner is dead are killed by the next node start."""

from __future__ import annotations

import os
import subprocess

from disco.node.orphans import WorkerRegistry, start_time


def test_reap_kills_the_live_sessions_of_a_dead_owners_task_file(tmp_path) -> None:
    live = subprocess.Popen(["sleep", "60"], start_new_session=True)
    reaped = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        directory = tmp_path / "reg"
        directory.mkdir()
        # owner: this process with another start time (a dead master whose pid is reused)
        owner = "%d-%d" % (os.getpid(), start_time(os.getpid()) + 1)
        lines = [
            "+%d %d" % (live.pid, start_time(live.pid)),
            "+%d %d" % (reaped.pid, start_time(reaped.pid)),
            "-%d" % reaped.pid,  # reaped by the warm process: not an orphan
            "+12",  # cut short by a crash
        ]
        name = "%s-%d-%d-tasks" % (owner, 99999999, 1)
        (directory / name).write_text("\n".join(lines))
        assert WorkerRegistry(str(directory)).reap() == 1
        assert live.wait(10) == -9
        assert reaped.poll() is None
        assert not (directory / name).exists()
    finally:
        for proc in (live, reaped):
            proc.kill()
            proc.wait()


def test_reap_keeps_the_task_file_of_a_live_owner(tmp_path) -> None:
    live = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        directory = tmp_path / "reg"
        directory.mkdir()
        owner = "%d-%d" % (os.getpid(), start_time(os.getpid()))
        name = "%s-%d-%d-tasks" % (owner, 99999999, 1)
        (directory / name).write_text("+%d %d\n" % (live.pid, start_time(live.pid)))
        assert WorkerRegistry(str(directory)).reap() == 0
        assert live.poll() is None
        assert (directory / name).exists()
    finally:
        live.kill()
        live.wait()
