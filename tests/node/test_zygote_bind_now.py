"""The zygote is exec'd with ``LD_BIND_NOW`` (``disco.node.zygote_process.zygote_environ``):
its forked children bind no symbol of libpython or libc anew; neither it nor a worker
keeps the variable in its environment."""

from __future__ import annotations

import os

import pytest

from disco.core import Job, result_iterator

pytestmark = pytest.mark.timeout(60)


def env_map(entry, params):
    import os

    yield "env", sorted(k for k in os.environ if "BIND_NOW" in k)


def test_the_zygote_binds_its_symbols_at_start_and_keeps_that_to_itself(master):
    """The zygote is exec'd with ``LD_BIND_NOW`` (its forked children bind no symbol of
    libpython or libc anew: faults per task); neither it nor a task it forks keeps the
    variable in its environment."""
    job = Job(master=master.url).run(input=["raw://x"], map=env_map)
    got = dict(result_iterator(job.wait(timeout=30)))
    assert got["env"] == []  # the task's environment is the job's
    zygote = master.server.backend.runner.zygotes.current
    with open("/proc/%d/environ" % zygote._proc.pid, "rb") as f:
        at_exec = f.read().split(b"\0")  # (the environment the process was exec'd with)
    assert b"LD_BIND_NOW=1" in at_exec


def test_zygote_environ_keeps_a_bind_now_of_the_node_own():
    from disco.node import zygote_process

    env = zygote_process.zygote_environ({"PATH": "/bin"})
    assert env == {"PATH": "/bin", "LD_BIND_NOW": "1", "DISCO_ZYGOTE_BIND_NOW": "1"}
    own = zygote_process.zygote_environ({"LD_BIND_NOW": "yes"})
    assert own == {"LD_BIND_NOW": "yes"}  # not ours to drop in the zygote
    saved = dict(os.environ)
    try:
        os.environ.update(env)
        zygote_process._drop_bind_now()
        assert "LD_BIND_NOW" not in os.environ and "DISCO_ZYGOTE_BIND_NOW" not in os.environ
        os.environ.update(own)
        zygote_process._drop_bind_now()
        assert os.environ["LD_BIND_NOW"] == "yes"
    finally:
        os.environ.clear()
        os.environ.update(saved)
