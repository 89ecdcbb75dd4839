"""The task channel as HTTP messages (issue 9 B): ``POST /disco/ctrl/task_channel`` and
``RemoteTaskChannel``.

Real masters; the local backend with ``remote_channel=True`` hands every worker a
``RemoteTaskChannel``, so each INPUT, INPUT_ERR and event of a real job crosses HTTP.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from typing import Any, Literal

import aiohttp
import pytest

from disco import auth
from disco.backends.base import InputEntry, Replica
from disco.backends.channel import (
    PATH,
    ChannelClosed,
    ChannelRegistry,
    ChannelRequest,
    RemoteTaskChannel,
)
from disco.core import Disco, result_iterator
from disco.embedded import EmbeddedMaster
from disco.job import Job
from disco.test import TestServer
from tests.backends.jobfuncs import int_map, sleepy_map, sum_reduce
from tests.conftest import child_pids, poll_for

pytestmark = pytest.mark.timeout(180)

TOKEN = "t0ken-of-the-cluster"


def _master(tmp_path, name: str, **kwargs: Any) -> EmbeddedMaster:
    return EmbeddedMaster(root=tmp_path / name, nodes=[("localhost", 2)], retry_delay=0.0, **kwargs)


@pytest.fixture
def remote(tmp_path) -> Iterator[EmbeddedMaster]:
    """A master whose workers talk to it over HTTP only."""
    before = child_pids()
    with _master(tmp_path, "remote", backend_options={"remote_channel": True}) as m:
        yield m
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


def node_events(master: EmbeddedMaster, job: Job) -> list[tuple[str, str]]:
    """(host, text) of the job's events that came from its tasks, normalised: no
    durations, no job name."""
    found = []
    for _offset, (_when, host, text) in Disco(master.url).events(job.name):
        if host == "master":
            continue
        text = re.sub(r"Task finished in [0-9:.]+", "Task finished in T", text)
        found.append((host, text.replace(job.name, "JOB")))
    return found


def by_task(events: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    tasks: dict[str, list[tuple[str, str]]] = {}
    for host, text in events:
        match = re.search(r"\[(\w+:\d+)\]", text)
        tasks.setdefault(match.group(1) if match else "", []).append((host, text))
    return tasks


def run_job(master: EmbeddedMaster, inputs_server: TestServer, tag: str) -> tuple[Job, list[Any]]:
    """Dead replicas are skipped; an input whose every replica fails once is reported
    with INPUT_ERR and read at the next try."""
    inputs = ["1", ["2_fail", "200"], "3", ["4_fail", "flaky-2-400-%s" % tag]]
    job = Job(master=master.url).run(
        input=inputs_server.urls(inputs), map=int_map, reduce=sum_reduce
    )
    return job, list(result_iterator(job.wait(poll_interval=0.1, timeout=120)))


def test_a_job_over_http_gives_the_exact_answer_and_event_log(tmp_path, remote, inputs_server):
    """Every message of the job's tasks goes over HTTP; the answer and the event log
    are those of the same job on the in-process channel."""
    job, answer = run_job(remote, inputs_server, "remote")
    assert answer == [(6040, "")]
    served = remote.server.runtime.channels.served
    events = node_events(remote, job)
    assert served["event"] == len(events) > 0  # each task event came over HTTP
    assert served["input"] >= 5  # 4 map tasks and the reduce asked for their inputs
    assert served["input_err"] >= 1  # the failed replicas were reported over HTTP
    assert len(remote.server.runtime.channels) == 0  # every attempt's token is gone

    with _master(tmp_path, "inprocess") as local:  # its DISCO_PORT while it runs
        local_job, local_answer = run_job(local, inputs_server, "local")
        assert local.server.runtime.channels.served == {}  # nothing used HTTP there
        local_events = node_events(local, local_job)
    assert local_answer == answer
    assert sorted(local_events) == sorted(events)
    assert by_task(local_events) == by_task(events)  # and each task's events in order


def post(master: EmbeddedMaster, body: bytes, headers: dict[str, str] | None = None):
    async def go() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            async with session.post(master.url + PATH, data=body, headers=headers) as resp:
                return resp.status, await resp.text()

    return asyncio.run(go())


def test_unknown_tokens_are_404(remote):
    body = json.dumps({"token": "no-such-token", "op": "event", "message": "x"}).encode()
    status, text = post(remote, body)
    assert status == 404 and "ended or was killed" in text


MALFORMED: list[Any] = [
    b"not json",
    b"\xff\xfe",
    b"[" * 100000,
    [],
    "token",
    {},
    {"op": "event", "message": "x"},
    {"token": "", "op": "event", "message": "x"},
    {"token": 5, "op": "event", "message": "x"},
    {"token": "t", "op": "nope"},
    {"token": "t", "op": "event"},
    {"token": "t", "op": "event", "message": ["x"]},
    {"token": "t", "op": "input", "mode": "some", "ids": []},
    {"token": "t", "op": "input", "mode": "all"},
    {"token": "t", "op": "input", "mode": "all", "ids": "1"},
    {"token": "t", "op": "input", "mode": "include", "ids": [1, -2]},
    {"token": "t", "op": "input", "mode": "include", "ids": [True]},
    {"token": "t", "op": "input", "mode": "include", "ids": [1.5]},
    {"token": "t", "op": "input_err", "replica_ids": [0]},
    {"token": "t", "op": "input_err", "input_id": "0", "replica_ids": [0]},
    {"token": "t", "op": "input_err", "input_id": 0, "replica_ids": None},
    {"token": "t", "op": "input_err", "input_id": 0, "replica_ids": [{"a": 1}]},
]


def test_malformed_bodies_are_400(remote):
    for body in MALFORMED:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        status, text = post(remote, data)
        assert status == 400, (body, status, text)


class BlockingChannel:
    """A channel whose INPUT never gets an answer (a deferred reply, 8.5)."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def get_inputs(
        self, mode: Literal["all", "include", "exclude"], ids: list[int]
    ) -> tuple[Literal["done", "more"], list[InputEntry]]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def input_failed(self, input_id: int, replica_ids: list[int]) -> list[Replica] | None:
        return [Replica(7, "raw://again")]

    async def event(self, message: str) -> None:
        self.events.append(message)


def test_a_token_that_ended_is_404_even_for_a_waiting_request(remote):
    """Registered on the real runtime: requests pass while the token lives; a deferred
    INPUT is answered 404 the moment the attempt ends, and so is anything later."""
    rt = remote.server.runtime
    channel = BlockingChannel()
    token = remote.call(rt.register_channel, channel)

    async def go() -> None:
        async with RemoteTaskChannel(remote.url, token) as remote_channel:
            await remote_channel.event("hello")
            assert await remote_channel.input_failed(3, [0]) == [Replica(7, "raw://again")]
            waiting = asyncio.ensure_future(remote_channel.get_inputs("all", []))
            await asyncio.sleep(0.2)
            assert not waiting.done()
            threading.Thread(target=remote.call, args=(rt.unregister_channel, token)).start()
            with pytest.raises(ChannelClosed, match="ended"):
                await asyncio.wait_for(waiting, 30)
            with pytest.raises(ChannelClosed):
                await remote_channel.event("too late")

    asyncio.run(go())
    assert channel.events == ["hello"]


def test_a_killed_attempt_s_token_is_404(remote):
    job = Job(master=remote.url).run(input=["raw://a"], map=sleepy_map)
    rt = remote.server.runtime
    poll_for(lambda: rt.channels.tokens(), 60, "the attempt to be running")
    (token,) = rt.channels.tokens()
    remote.disco.kill(job.name)
    poll_for(lambda: token not in rt.channels, 30, "the attempt to end")
    body = json.dumps({"token": token, "op": "input", "mode": "all", "ids": []}).encode()
    status, text = post(remote, body)
    assert status == 404 and "ended or was killed" in text


def test_registry_ends_waiting_calls_when_the_token_goes():
    async def go() -> None:
        registry = ChannelRegistry()
        token = registry.register(BlockingChannel())
        call = asyncio.ensure_future(registry.call(ChannelRequest(token, "input")))
        await asyncio.sleep(0.05)
        registry.unregister(token)
        with pytest.raises(ChannelClosed):
            await call
        with pytest.raises(ChannelClosed):
            await registry.call(ChannelRequest(token, "event", message="x"))

    asyncio.run(go())


@pytest.fixture
def secured(tmp_path) -> Iterator[EmbeddedMaster]:
    """Reads and writes need the token; workers talk over HTTP."""
    settings = {"DISCO_AUTH_TOKEN": TOKEN, "DISCO_AUTH_READS": "1"}
    before = child_pids()
    with _master(
        tmp_path, "secured", settings=settings, backend_options={"remote_channel": True}
    ) as m:
        yield m
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


def test_the_route_needs_the_cluster_token(secured, inputs_server):
    body = json.dumps({"token": "nope", "op": "event", "message": "x"}).encode()
    status, text = post(secured, body)
    assert status == 401 and auth.HEADER in text
    status, _ = post(secured, body, {auth.HEADER: TOKEN})
    assert status == 404  # past the check: no such attempt
    # the nodes send the token: pack fetch and channel pass, the job is exact
    job, answer = run_job(secured, inputs_server, "secured")
    assert answer == [(6040, "")]
    assert secured.server.runtime.channels.served["event"] == len(node_events(secured, job))
