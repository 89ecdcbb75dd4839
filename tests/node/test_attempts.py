"""What the two node runtimes share (local backend, ``NodeService``): the zygote holder,
``remove_job_data``, the attempt runner's kill by key and its refusal once closed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from disco.backends.base import TaskFailed
from disco.node.attempts import AttemptRunner, attempt_key
from disco.node.jobhome import MARKER, jobhome_path, remove_job_data
from disco.node.orphans import WorkerRegistry
from disco.node.zygote import ZygoteHolder
from disco.safenames import UnsafeName
from tests.node.helpers import Channel, install_worker, make_spec, pid_alive, wait_until

pytestmark = pytest.mark.timeout(60)


def test_holder_starts_once_and_replaces_a_dead_zygote(tmp_path) -> None:
    async def main() -> tuple[int, int]:
        holder = ZygoteHolder(WorkerRegistry(str(tmp_path / "reg")))
        try:
            first, again = await asyncio.gather(holder.get(), holder.get())
            assert first is not None and first is again and first.alive  # one start
            os.kill(first.pid, signal.SIGKILL)
            await first._proc.wait()
            second = await holder.get()
            assert second is not None and second is not first and second.alive
            return first.pid, second.pid
        finally:
            await holder.close()

    _first, second = asyncio.run(main())
    wait_until(lambda: not pid_alive(second), 5, "the zygote to be gone after close")


def test_holder_gives_up_when_no_zygote_can_start(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))

    async def main() -> None:
        holder = ZygoteHolder(WorkerRegistry(str(tmp_path / "reg")), where="node x: ")
        assert await holder.get() is None
        assert holder.enabled is False  # workers start normally from now on
        assert await holder.get() is None
        await holder.close()

    asyncio.run(main())


def test_a_closed_holder_starts_none(tmp_path) -> None:
    async def main() -> None:
        holder = ZygoteHolder(WorkerRegistry(str(tmp_path / "reg")))
        await holder.close()
        assert await holder.get() is None and holder.current is None

    asyncio.run(main())


def test_remove_job_data_deletes_the_job_home_and_its_lock(tmp_path) -> None:
    data = str(tmp_path / "data")
    home = jobhome_path(data, "127.0.0.2", "Job@1")
    os.makedirs(os.path.join(home, "sub"))
    open(home + ".lock", "w").close()
    asyncio.run(remove_job_data(data, "127.0.0.2", "Job@1"))
    assert not os.path.exists(home) and not os.path.exists(home + ".lock")
    asyncio.run(remove_job_data(data, "127.0.0.2", "Job@1"))  # already gone: fine


def test_remove_job_data_never_deletes_through_a_link(tmp_path) -> None:
    data = str(tmp_path / "data")
    elsewhere = tmp_path / "data" / "other"
    elsewhere.mkdir(parents=True)
    (elsewhere / "keep").write_text("x")
    os.symlink(elsewhere, os.path.join(data, "127.0.0.2"))
    with pytest.raises(UnsafeName):
        asyncio.run(remove_job_data(data, "127.0.0.2", "Job@1"))
    assert (elsewhere / "keep").exists()


def test_runner_kill_by_key_and_refusal_once_closed(tmp_path) -> None:
    spec = make_spec(tmp_path)

    async def main() -> None:
        registry = WorkerRegistry(str(tmp_path / "reg"))
        runner = AttemptRunner(registry, ZygoteHolder(registry, enabled=False))
        assert await runner.kill(attempt_key(spec)) is False  # nothing runs
        await runner.close()
        result = await runner.run(spec, Channel())
        assert result == TaskFailed("error", "Node %s is shutting down" % spec.host)

    asyncio.run(main())


def test_runner_kills_an_attempt_by_its_key(tmp_path) -> None:
    spec = make_spec(tmp_path)
    home = install_worker(spec, "hello\necho $$ > worker.pid\nsend INPUT '\"\"'; recv\nsleep 30\n")
    open(os.path.join(home, MARKER), "w").close()  # the job home is ready
    channel = Channel()
    channel.release.clear()  # the INPUT request blocks

    async def main() -> None:
        registry = WorkerRegistry(str(tmp_path / "reg"))
        runner = AttemptRunner(registry, ZygoteHolder(registry, enabled=False))
        task = asyncio.create_task(runner.run(spec, channel))
        while not channel.input_requests:
            await asyncio.sleep(0.01)
        assert list(runner.attempts) == [attempt_key(spec)]
        assert await runner.kill(attempt_key(spec)) is True
        with pytest.raises(asyncio.CancelledError):
            await task
        assert runner.attempts == {}
        await runner.close()

    asyncio.run(main())
    with open(os.path.join(home, "worker.pid")) as f:
        pid = int(f.read())
    wait_until(lambda: not pid_alive(pid), 5, "the killed worker to be gone")


def test_an_attempt_runs_in_its_callers_task(tmp_path) -> None:
    """No task of its own per attempt (branch ``mtloop2``: one loop iteration less)."""
    spec = make_spec(tmp_path)
    home = install_worker(spec, "hello\nsend DONE '\"\"'\nsleep 30\n")
    open(os.path.join(home, MARKER), "w").close()  # the job home is ready
    created: list[str] = []

    async def main() -> object:
        loop = asyncio.get_running_loop()

        def factory(loop: asyncio.AbstractEventLoop, coro: object, **kw: object) -> object:
            created.append(getattr(coro, "__qualname__", "?"))
            return asyncio.Task(coro, loop=loop, **kw)  # type: ignore[arg-type]

        registry = WorkerRegistry(str(tmp_path / "reg"))
        runner = AttemptRunner(registry, ZygoteHolder(registry, enabled=False))
        loop.set_task_factory(factory)  # type: ignore[arg-type]
        result = await runner.run(spec, Channel())
        loop.set_task_factory(None)
        await runner.close()
        return result

    result = asyncio.run(main())
    assert type(result).__name__ == "TaskDone", result
    # asyncio's own subprocess set-up may start one; the runner none
    assert [name for name in created if "Attempt" in name or "worker" in name] == []


def test_closing_the_runner_ends_an_attempt_in_its_caller_without_a_cancel(tmp_path) -> None:
    """``close()`` cancels the caller's task; the caller gets the node's failure and is
    not left cancelled (its later awaits and timeouts work)."""
    spec = make_spec(tmp_path)
    home = install_worker(spec, "hello\necho $$ > worker.pid\nsleep 30\n")
    open(os.path.join(home, MARKER), "w").close()

    async def main() -> tuple[object, int]:
        registry = WorkerRegistry(str(tmp_path / "reg"))
        runner = AttemptRunner(registry, ZygoteHolder(registry, enabled=False))

        async def caller() -> tuple[object, int]:
            result = await runner.run(spec, Channel())
            async with asyncio.timeout(5):  # a cancel left pending would break this
                await asyncio.sleep(0.01)
            task = asyncio.current_task()
            assert task is not None
            return result, task.cancelling()

        task = asyncio.create_task(caller())
        while not os.path.exists(os.path.join(home, "worker.pid")):
            await asyncio.sleep(0.01)
        await runner.close()
        return await task

    result, cancelling = asyncio.run(main())
    assert result == TaskFailed("error", "Node %s is shutting down" % spec.host)
    assert cancelling == 0
    with open(os.path.join(home, "worker.pid")) as f:
        pid = int(f.read())
    wait_until(lambda: not pid_alive(pid), 5, "the worker to be gone")
