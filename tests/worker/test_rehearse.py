"""The rehearsal of a task's path in the zygote (disco.worker.rehearse): nothing of it is
seen outside the process, and the process is left as it was."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.timeout(60)

_SCRIPT = textwrap.dedent(
    """
    import os, sys
    from disco.node import zygote_process
    zygote_process._preload()
    from disco.worker import protocol, report, rehearse
    import disco.worker

    def fds():
        return sorted(os.listdir("/proc/self/fd"))

    def state():
        reader = protocol._reader
        return (
            os.getcwd(), sys.stdout, sys.stderr, os.fstat(2).st_ino, fds(), reader.fd,
            list(reader.owed), list(reader.kept), reader.prefetched_inputs,
            reader.parser.unparsed, protocol._msgs_sent, report.reporter.path,
            report.reporter.state, report._channel, disco.worker.active_task,
            dict(os.environ),
        )

    before = state()
    done = rehearse.rehearse(times=3)
    after = state()
    assert done == 3 == rehearse.rehearsed, (done, rehearse.rehearsed)
    for a, b in zip(before, after):
        assert a == b, (a, b)
    print("same")
    """
)


def _rehearsal_dirs() -> set[str]:
    import tempfile

    found = set()
    for where in ("/dev/shm", tempfile.gettempdir()):
        try:
            found |= {os.path.join(where, n) for n in os.listdir(where) if "disco-rehearsal" in n}
        except OSError:
            pass
    return found


def test_a_rehearsal_writes_nothing_leaves_no_file_and_restores_the_process(tmp_path) -> None:
    """Three rehearsals: nothing on stderr (in the zygote, the master's log: no protocol
    message leaves the process), no file left in the working directory or the temporary
    directories, and cwd, stdio, descriptors, environment and the task's module state
    as they were."""
    work = tmp_path / "work"
    work.mkdir()
    before = _rehearsal_dirs()
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        cwd=work,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.getcwd()),
        timeout=60,
    )
    assert proc.stderr == ""
    assert proc.stdout == "same\n"
    assert proc.returncode == 0
    assert list(work.iterdir()) == []
    assert _rehearsal_dirs() <= before


def test_a_rehearsal_removes_the_directory_a_killed_rehearsal_left(tmp_path) -> None:
    """A zygote killed mid-rehearsal (with its master) leaves its directory; the next
    rehearsal removes the directories of rehearsals whose process is gone."""
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    pid = int(dead.stdout)
    where = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
    if where is None:
        import tempfile

        where = tempfile.gettempdir()
    stale = os.path.join(where, "disco-rehearsal-%d-test" % pid)
    os.makedirs(os.path.join(stale, "ab", "map:0-x"))
    try:
        script = "from disco.worker import rehearse; assert rehearse.rehearse(times=1) == 1"
        subprocess.run(
            [sys.executable, "-c", script],
            cwd=tmp_path,
            check=True,
            env=dict(os.environ, PYTHONPATH=os.getcwd()),
            timeout=60,
        )
        assert not os.path.exists(stale)
    finally:
        import shutil

        shutil.rmtree(stale, ignore_errors=True)
