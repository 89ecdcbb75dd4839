"""Python workers forked from the zygote run exactly like exec'd ones (master-api.md 8.1)."""

from __future__ import annotations

import os
import signal

import pytest

from disco.core import Job, result_iterator

pytestmark = pytest.mark.timeout(60)


def report_map(entry, params):
    import os
    import sys

    with open("/proc/%d/cmdline" % os.getppid(), "rb") as f:
        parent = f.read().replace(b"\0", b" ").decode()
    yield "cwd", os.getcwd()
    yield "nice", os.nice(0)
    yield "session_leader", os.getsid(0) == os.getpid()
    yield "jobenv", os.environ.get("LD_LIBRARY_PATH", "")  # from jobenvs
    yield "lib_on_path", any(p.endswith("lib") or p == "lib" for p in sys.path)
    yield "parent", parent
    with open("/proc/%d/stat" % os.getppid()) as f:
        yield "parent_nice", int(f.read().rsplit(")", 1)[1].split()[16])
    yield "stdin_is_socket_or_pipe", not os.isatty(0)


def run_report(master, **kwargs):
    job = Job(master=master.url).run(input=["raw://x"], map=report_map, **kwargs)
    return job, dict(result_iterator(job.wait(timeout=30)))


def test_forked_worker_has_the_exec_environment(master):
    job, got = run_report(master)
    assert "disco.node.zygote_process" in got["parent"]  # forked, not exec'd
    assert got["cwd"].endswith(job.name)  # the job home (8.1)
    assert os.path.isdir(got["cwd"])
    assert got["nice"] == 19
    # the job's warm process that forked it is not niced: its forks and reaping do not
    # wait behind the nice-19 tasks for a core
    assert got["parent_nice"] == os.nice(0)
    assert got["session_leader"] is True  # its own session: kill reaches the whole group
    assert got["jobenv"] == "lib"
    assert got["lib_on_path"] is True
    assert got["stdin_is_socket_or_pipe"] is True


def test_a_dead_zygote_is_replaced_and_jobs_still_run(master):
    run_report(master)  # the zygote is up
    backend = master.server.backend
    zygote = backend.runner.zygotes.current
    assert zygote is not None and zygote.alive
    os.kill(zygote._proc.pid, signal.SIGKILL)
    _job, got = run_report(master)
    assert got["jobenv"] == "lib"  # a new zygote (or a plain start) ran the task


def test_without_zygote_workers_are_exec_d(tmp_path):
    from disco.embedded import EmbeddedMaster

    with EmbeddedMaster(tmp_path / "root") as m:
        m.server.backend.use_zygote = False
        job, got = run_report(m)
    assert "disco.node.zygote_process" not in got["parent"]
    assert got["nice"] == 19 and got["session_leader"] is True
    assert got["cwd"].endswith(job.name)


def test_a_reply_the_worker_never_reads_does_not_cost_its_last_output():
    """A worker that dies before reading its last replies: the failed send (EPIPE) fails
    only the send; everything the worker wrote is still read, up to its end."""
    import asyncio
    import socket

    from disco.node.zygote import worker_streams

    async def main() -> bytes:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        reader, stdin = worker_streams(ours)
        last_words = b"Traceback: the worker's last words\n" * 2000
        theirs.sendall(last_words[:1000])
        theirs.shutdown(socket.SHUT_RD)  # it reads no more: our next send fails
        stdin.write(b"reply the worker never reads")
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            await stdin.drain()
        theirs.sendall(last_words[1000:])
        theirs.close()
        got = await reader.read()  # to the end of its output, not the send's error
        stdin.close()
        assert got == last_words
        return got

    assert asyncio.run(main())
