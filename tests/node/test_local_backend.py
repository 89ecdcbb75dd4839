"""The local backend: simulated nodes on loopback addresses running real workers."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp
import pytest

from disco.backends.base import TaskDone, TaskFailed
from disco.backends.local import LocalBackend
from disco.node.jobhome import jobhome_path
from disco.node.runner import WorkerLimits
from tests.conftest import free_port
from tests.node.helpers import PRELUDE, Channel, make_jobpack, pid_alive, wait_until

pytestmark = pytest.mark.timeout(30)

NODE = "127.0.0.2"
WORKER = PRELUDE + (
    "hello\nmkdir -p ab\nprintf 'hello' > ab/out\n"
    "send OUTPUT '[0,\"ab/out\",5]'; recv\n"
    'if [ -n "$BLOCK" ]; then echo $$ > worker.pid; send INPUT \'""\'; recv; fi\n'
    "send DONE '\"\"'\nsleep 30\n"
)


def make_backend(tmp_path, port):
    return LocalBackend(
        disco_data=str(tmp_path / "data"),
        ddfs_data=str(tmp_path / "ddfs"),
        disco_port=port,
        served_by_master={"localhost"},
        limits=WorkerLimits(pid_timeout=5),
    )


async def http_get(url):
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as resp:
            return resp.status, await resp.read()


def test_runs_a_task_and_serves_its_outputs(tmp_path, packs):
    port = free_port(NODE)
    spec = packs.spec(tmp_path, host=NODE, disco_port=port, group=(0, NODE))
    make_jobpack(packs.path(), {"bin/worker": WORKER})
    os.makedirs(tmp_path / "ddfs")

    async def main():
        backend = make_backend(tmp_path, port)
        await backend.start(["localhost", NODE])
        try:
            assert backend.is_connected(NODE) and backend.is_connected("localhost")
            assert not backend.is_connected("127.0.0.3")
            free, used = await backend.disk_usage(NODE)
            assert free > 0 and used > 0

            result = await backend.run_task(spec, Channel())
            assert isinstance(result, TaskDone), result
            (output,) = result.outputs
            assert output.kind == "dir" and output.labels == ((0, 5),)
            assert output.url.startswith("dir://%s/disco/%s/" % (NODE, NODE))
            # dir:// and disco:// resolve to http://<host>:<DISCO_PORT>/<path> (9.3)
            path = output.url.split("/", 3)[3]
            status, index = await http_get("http://%s:%d/%s" % (NODE, port, path))
            assert status == 200
            label, url, size = index.decode().split()
            assert (label, size) == ("0", "5")
            status, body = await http_get("http://%s:%d/%s" % (NODE, port, url.split("/", 3)[3]))
            assert (status, body) == (200, b"hello")

            # the master's own host is not served by the backend
            with pytest.raises(aiohttp.ClientConnectionError):
                await http_get("http://127.0.0.1:%d/disco/x" % port)

            home = jobhome_path(spec.disco_data, NODE, spec.jobname)
            assert os.path.isdir(home)
            await backend.remove_job_data(NODE, spec.jobname)
            assert not os.path.exists(home)
            await backend.remove_job_data(NODE, spec.jobname)  # already gone: fine

            await backend.set_hosts(["localhost"])
            assert not backend.is_connected(NODE)
            with pytest.raises(aiohttp.ClientConnectionError):
                await http_get("http://%s:%d/disco/x" % (NODE, port))
        finally:
            await backend.close()

    asyncio.run(main())


def test_extraction_failure_fails_the_attempt(tmp_path, packs):
    spec = packs.spec(tmp_path, host="localhost")
    make_jobpack(packs.path(), {"../evil": "x", "bin/worker": WORKER})

    async def main():
        backend = make_backend(tmp_path, free_port("127.0.0.1"))
        await backend.start(["localhost"])
        try:
            return await backend.run_task(spec, Channel())
        finally:
            await backend.close()

    result = asyncio.run(main())
    # the pack itself is bad, the same on every node: the job fails at once (issue 8.3)
    assert isinstance(result, TaskFailed) and result.kind == "fatal"
    assert result.message.startswith("Jobpack extraction failed: unsafe path")
    assert result.failure is not None and result.failure.kind == "jobpack"


def _run_once(tmp_path, spec):
    async def main():
        backend = make_backend(tmp_path, free_port("127.0.0.1"))
        await backend.start(["localhost"])
        try:
            return await backend.run_task(spec, Channel())
        finally:
            await backend.close()

    return asyncio.run(main())


def test_unsupported_compression_is_fatal_with_its_reason(tmp_path, packs):
    from tests.master.packs import with_compression_method

    spec = packs.spec(tmp_path, host="localhost")
    pack = make_jobpack(packs.path(), {"bin/worker": WORKER})
    with open(packs.path(), "wb") as f:
        f.write(with_compression_method(pack, 99))
    result = _run_once(tmp_path, spec)
    assert isinstance(result, TaskFailed) and result.kind == "fatal"
    assert "compression method 99, which is not supported" in result.message


def test_job_home_on_a_node_fault_is_retried(tmp_path, packs):
    """An OSError while preparing the job home (here: DISCO_DATA is a file) is the
    node's problem, not the pack's: the attempt fails recoverably."""
    spec = packs.spec(tmp_path, host="localhost")
    make_jobpack(packs.path(), {"bin/worker": WORKER})
    os.makedirs(spec.disco_data, exist_ok=True)
    with open(os.path.join(spec.disco_data, "localhost"), "w") as f:
        f.write("not a directory")
    result = _run_once(tmp_path, spec)
    assert isinstance(result, TaskFailed) and result.kind == "error", result
    assert result.failure is not None and result.failure.kind == "node"


def _blocked_spec(tmp_path, packs, taskid=0):
    spec = packs.spec(tmp_path, host="localhost", taskid=taskid, jobenvs={"BLOCK": "1"})
    make_jobpack(packs.path(), {"bin/worker": WORKER})
    return spec


def _worker_pid(spec) -> int:
    home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    with open(os.path.join(home, "worker.pid")) as f:
        return int(f.read())


def test_cancel_kills_the_worker(tmp_path, packs):
    spec = _blocked_spec(tmp_path, packs)
    channel = Channel()
    channel.release.clear()

    async def main():
        backend = make_backend(tmp_path, free_port("127.0.0.1"))
        await backend.start(["localhost"])
        try:
            task = asyncio.create_task(backend.run_task(spec, channel))
            while not channel.input_requests:
                await asyncio.sleep(0.01)
            started = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # far below the forever-blocked INPUT (generous: the machine may be loaded)
            assert time.monotonic() - started < 10.0
        finally:
            await backend.close()

    asyncio.run(main())
    pid = _worker_pid(spec)
    wait_until(lambda: not pid_alive(pid), 1, "worker to die")


def test_close_kills_running_attempts(tmp_path, packs):
    spec = _blocked_spec(tmp_path, packs)
    channel = Channel()
    channel.release.clear()

    async def main():
        backend = make_backend(tmp_path, free_port("127.0.0.1"))
        await backend.start(["localhost"])
        task = asyncio.create_task(backend.run_task(spec, channel))
        while not channel.input_requests:
            await asyncio.sleep(0.01)
        await backend.close()
        result = await task
        assert not backend.is_connected("localhost")
        late = await backend.run_task(spec, channel)
        return result, late

    result, late = asyncio.run(main())
    assert result == TaskFailed("error", "Node localhost unavailable")
    assert late == TaskFailed("error", "Node localhost unavailable")
    pid = _worker_pid(spec)
    wait_until(lambda: not pid_alive(pid), 1, "worker to die")
