"""The runner answers a forked worker's messages in the loop's read callback (branch
``mtloop2``): the attempt's task wakes only for what may wait (DONE here), not once per
message the worker writes.  A real process stands for the worker's process group; the
worker's side of the protocol is spoken by a thread over the socket pair, one message
at a time (each written only after the previous reply arrived)."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
from asyncio import tasks
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from disco.backends.base import InputEntry, Replica, TaskDone
from disco.framing import FrameParser, encode_frame
from disco.node.jobhome import MARKER
from disco.node.runner import run_worker
from disco.node.zygote import ZygoteProcess, worker_streams
from disco.worker import LAUNCHER

from .helpers import Channel, install_worker, make_spec

STEPS: dict[str, int] = {}


class CountedTask(tasks._PyTask):  # type: ignore[name-defined,misc]
    """A task that counts its steps (each start or wake-up) by its name."""

    def _Task__step(self, exc: BaseException | None = None) -> None:
        STEPS[self.get_name()] = STEPS.get(self.get_name(), 0) + 1
        super()._Task__step(exc)  # type: ignore[misc]


class ReadyChannel(Channel):
    """Answers INPUT at once (as the master's own channel: ``inputs_now``)."""

    def inputs_now(self, mode: str, ids: list[int]) -> Any:
        return "done", [e for e in self.entries if e.input_id not in ids]


def speak(sock: socket.socket, messages: list[tuple[str, Any]]) -> list[str]:
    """The worker's side: each message, then its reply (none after DONE, and nothing is
    said after DONE)."""
    types = [m for m, _ in messages]
    said = messages[: types.index("DONE") + 1] if "DONE" in types else messages
    return speak_batches(sock, [[message] for message in said])


class FakeZygote:
    """Hands the runner a ``ZygoteProcess`` whose pid is a real process (``sleep``, its
    own session: the group the runner kills) and whose socket is spoken to by ``speak``."""

    alive = True

    def __init__(self, messages: list[tuple[str, Any]]) -> None:
        self.messages = messages
        self.replies: list[str] = []
        self.threads: list[threading.Thread] = []

    async def spawn(self, cwd: str, env: dict[str, str], **_: Any) -> ZygoteProcess:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
        proc = ZygoteProcess(sleeper.pid, *worker_streams(ours))

        def worker() -> None:
            with theirs:
                self.replies = self.talk(theirs)

        def reaper() -> None:
            code = sleeper.wait()
            loop.call_soon_threadsafe(proc._set_exit, code)

        self.threads = [threading.Thread(target=t, daemon=True) for t in (worker, reaper)]
        for thread in self.threads:
            thread.start()
        return proc

    def talk(self, sock: socket.socket) -> list[str]:
        """The worker's side: say ``messages``; the replies' types."""
        return speak(sock, self.messages)


def test_messages_that_need_no_wait_do_not_wake_the_attempt(tmp_path) -> None:
    spec = make_spec(tmp_path)
    home = install_worker(spec, LAUNCHER.decode(), prelude=False)
    open(os.path.join(home, MARKER), "w").close()
    with open(os.path.join(home, spec.worker), "wb") as f:
        f.write(LAUNCHER)  # byte for byte the standard launcher: the zygote's path
    messages: list[tuple[str, Any]] = [
        ("WORKER", {"version": "1.1", "pid": os.getpid()}),
        ("TASK", ""),
        ("INPUT", ["exclude", []]),
        ("MSG", "hello"),
        ("PING", ""),
        ("OUTPUT", [0, "3f/map:3-x/out-0", 1]),
        ("MSG", "bye"),
        ("DONE", ""),
    ]
    zygote = FakeZygote(messages)
    channel = ReadyChannel([InputEntry(0, 0, (Replica(0, "raw://a"),))])

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_task_factory(lambda loop, coro, **kw: CountedTask(coro, loop=loop, **kw))
        attempt = loop.create_task(
            run_worker(spec, channel, home, zygote=zygote),  # type: ignore[arg-type]
            name="attempt",
        )
        return await attempt

    result = asyncio.run(main())
    for thread in zygote.threads:
        thread.join(10)
    assert isinstance(result, TaskDone), result
    assert zygote.replies == ["OK", "TASK", "INPUT", "OK", "OK", "OK", "OK"]
    assert [e.split(" ", 2)[2] for e in channel.events if e.startswith("MSG")] == [
        "hello",
        "bye",
    ]
    # start, DONE (a wake-up of its own), the index sync's thread and the exit: at most
    # these; seven messages answered in the task would wake it seven more times
    assert STEPS["attempt"] <= 5, STEPS


class TaskBoundChannel(ReadyChannel):
    """A channel whose event needs its task (as an HTTP client's timeouts do): it must
    never run in the read callback."""

    async def event(self, message: str) -> None:
        async with asyncio.timeout(5):  # RuntimeError outside a task
            await asyncio.sleep(0)
        await super().event(message)


def test_a_channel_whose_event_needs_its_task_is_awaited_in_the_task(tmp_path) -> None:
    spec = make_spec(tmp_path)
    home = install_worker(spec, LAUNCHER.decode(), prelude=False)
    open(os.path.join(home, MARKER), "w").close()
    with open(os.path.join(home, spec.worker), "wb") as f:
        f.write(LAUNCHER)
    messages: list[tuple[str, Any]] = [
        ("WORKER", {"version": "1.1", "pid": os.getpid()}),
        ("TASK", ""),
        ("MSG", "one"),
        ("MSG", "two"),
        ("DONE", ""),
    ]
    zygote = FakeZygote(messages)
    channel = TaskBoundChannel([InputEntry(0, 0, (Replica(0, "raw://a"),))])

    async def main() -> Any:
        # a bound for a loaded machine: a message left unanswered would wait forever
        return await asyncio.wait_for(
            run_worker(spec, channel, home, zygote=zygote),  # type: ignore[arg-type]
            30,
        )

    result = asyncio.run(main())
    for thread in zygote.threads:
        thread.join(10)
    assert isinstance(result, TaskDone), result
    assert zygote.replies == ["OK", "TASK", "OK", "OK"]
    assert [e.split(" ", 2)[2] for e in channel.events if e.startswith("MSG")] == ["one", "two"]


def speak_batches(sock: socket.socket, batches: list[list[tuple[str, Any]]]) -> list[str]:
    """A pipelining worker's side: each batch of messages in one write, then the replies
    of the batch's messages (none after DONE, nor after the end of the stream)."""
    parser = FrameParser()
    replies: list[str] = []
    for batch in batches:
        sock.sendall(b"".join(encode_frame(t, json.dumps(p).encode()) for t, p in batch))
        for _ in [m for m, _ in batch if m != "DONE"]:
            frame = None
            while frame is None:
                frame = parser.next_frame()
                if frame is None:
                    data = sock.recv(65536)
                    if not data:
                        return replies
                    parser.feed(data)
            replies.append(frame.type)
    return replies


class BatchZygote(FakeZygote):
    def __init__(self, batches: list[list[tuple[str, Any]]]) -> None:
        super().__init__([])
        self.batches = batches

    def talk(self, sock: socket.socket) -> list[str]:
        """The worker's side: each batch in one write; the replies' types."""
        return speak_batches(sock, self.batches)


class CountingPool(ThreadPoolExecutor):
    """The loop's default executor (``asyncio.to_thread``), counting what it is given."""

    submitted = 0

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        CountingPool.submitted += 1
        return super().submit(*args, **kwargs)


def _run_batches(tmp_path: Any, batches: list[list[tuple[str, Any]]]) -> tuple[Any, Any, Any]:
    STEPS.clear()
    CountingPool.submitted = 0
    spec = make_spec(tmp_path)
    home = install_worker(spec, LAUNCHER.decode(), prelude=False)
    open(os.path.join(home, MARKER), "w").close()
    with open(os.path.join(home, spec.worker), "wb") as f:
        f.write(LAUNCHER)
    zygote = BatchZygote(batches)
    channel = ReadyChannel([InputEntry(0, 0, (Replica(0, "raw://a"),))])

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(CountingPool(2))
        loop.set_task_factory(lambda loop, coro, **kw: CountedTask(coro, loop=loop, **kw))
        attempt = loop.create_task(
            run_worker(spec, channel, home, zygote=zygote),  # type: ignore[arg-type]
            name="attempt",
        )
        return await asyncio.wait_for(attempt, 30)

    result = asyncio.run(main())
    for thread in zygote.threads:
        thread.join(10)
    return result, zygote, channel


def test_pipelined_requests_are_answered_in_order_in_the_read_callback(tmp_path) -> None:
    """Our worker's two writes of a map task (WORKER + TASK + INPUT; MSG + OUTPUT + MSG +
    DONE): each message acted on in order, the replies in request order, and the
    attempt's task woken no more often than for one message at a time."""
    hello = ("WORKER", {"version": "1.1", "pid": os.getpid()})
    batches: list[list[tuple[str, Any]]] = [
        [hello, ("TASK", ""), ("INPUT", ["exclude", []])],
        [("MSG", "Done: 1 entries mapped"), ("OUTPUT", [0, "3f/map:3-x/out-0", 1])]
        + [("MSG", "Results sent to master"), ("DONE", "")],
    ]
    result, zygote, channel = _run_batches(tmp_path, batches)
    assert isinstance(result, TaskDone), result
    assert zygote.replies[:3] == ["OK", "TASK", "INPUT"]
    assert zygote.replies[3:] in (["OK", "OK", "OK"], [])  # (unread when killed first)
    assert [e.split(" ", 2)[2] for e in channel.events if e.startswith("MSG")] == [
        "Done: 1 entries mapped",
        "Results sent to master",
    ]
    assert channel.events[-1].startswith("DONE: [map:3]")
    assert [(o.kind, o.size) for o in result.outputs] == [("dir", 1)]
    assert STEPS["attempt"] <= 5, STEPS


def test_a_bad_version_with_task_already_sent_ends_the_attempt_unanswered(tmp_path) -> None:
    batches: list[list[tuple[str, Any]]] = [
        [("WORKER", {"version": "1.0", "pid": os.getpid()}), ("TASK", "")],
    ]
    result, zygote, _ = _run_batches(tmp_path, batches)
    assert (result.kind, result.message) == ("fatal", "Invalid worker version: 1.0")
    assert zygote.replies == []


def test_an_index_file_in_a_scratch_directory_is_written_without_a_thread(tmp_path) -> None:
    """Not synced (disco.scratch), the index file is created and written on the loop:
    no hand-off to the thread pool and back (about 50 µs of the master's CPU)."""
    from disco import scratch

    hello = ("WORKER", {"version": "1.1", "pid": os.getpid()})
    batches: list[list[tuple[str, Any]]] = [
        [hello, ("TASK", ""), ("INPUT", ["exclude", []])],
        [("OUTPUT", [0, "3f/map:3-x/out-0", 1]), ("DONE", "")],
    ]
    synced = _run_batches(tmp_path / "synced", batches)
    assert CountingPool.submitted == 1  # the index file's write and sync
    scratch.add(tmp_path / "scratch")
    try:
        result, _, _ = _run_batches(tmp_path / "scratch", batches)
    finally:
        scratch.remove(tmp_path / "scratch")
    assert CountingPool.submitted == 0
    for got in (synced[0], result):
        assert isinstance(got, TaskDone), got
        [index] = [o for o in got.outputs if o.kind == "dir"]
        assert index.size == 1
        path = index.url.split("/", 7)[7]  # dir://host/disco/host/<hh>/<job>/.disco/...
        assert path.startswith(".disco/")
