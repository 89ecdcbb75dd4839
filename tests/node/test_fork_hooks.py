"""A warm process trims threading's and logging's at-fork hooks
(``disco.node.zygote_process._trim_fork_hooks``): a task it forks runs only what the
hooks do there; a fork made by a task (job code) runs the hooks whole."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(60)

SCRIPT = r"""
import logging, os, threading
from disco.node import zygote_process as zp

logging.getLogger("x").addHandler(logging.StreamHandler())
zp._trim_fork_hooks()
assert len(zp._TRIMMED) == 2, zp._TRIMMED
r, w = os.pipe()
pid = os.fork()
if pid == 0:  # a task of this warm process
    out = [threading.active_count(), int(logging._lock.acquire(timeout=1))]
    logging._lock.release()
    out.append(int(threading._after_fork.__defaults__[0] == os.getppid()))
    gate = threading.Event()
    thread = threading.Thread(target=gate.wait)
    thread.start()
    with logging._lock:  # held by this task's thread while the task forks
        pass
    grandchild = os.fork()
    if grandchild == 0:  # the task's own fork: threading's hook ran whole
        got = [threading.active_count(), int(logging._lock.acquire(timeout=1))]
        os.write(w, (" ".join(map(str, got)) + "\n").encode())
        os._exit(0)
    os.waitpid(grandchild, 0)
    gate.set()
    thread.join()
    os.write(w, (" ".join(map(str, out)) + "\n").encode())
    os._exit(0)
os.waitpid(pid, 0)
os.close(w)
print(os.read(r, 1000).decode(), end="")
"""


def test_a_task_runs_the_trimmed_hooks_and_its_own_forks_the_whole_ones():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=root, capture_output=True, text=True, timeout=50
    )
    assert out.returncode == 0, out.stderr
    grandchild, task = out.stdout.splitlines()
    assert grandchild == "1 1"  # only its own thread; logging's lock free
    assert task == "1 1 1"  # one thread, the lock free, the hook guarded by the warm pid
