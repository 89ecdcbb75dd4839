"""The task channel as HTTP messages: how a node anywhere reaches its attempt's channel.

The runtime registers each attempt's in-process ``TaskChannel`` under a random token
(``ChannelRegistry``, token in ``TaskSpec.channel_token``) and drops it when the
attempt ends.  A node calls ``POST /disco/ctrl/task_channel`` (a write: it carries the
cluster's auth header when one is set) with a JSON body::

    {"token": T, "op": "input", "mode": "all"|"include"|"exclude", "ids": [int...]}
        -> {"status": "done"|"more", "inputs": [InputEntry.to_json()...]}
    {"token": T, "op": "input_err", "input_id": int, "replica_ids": [int...]}
        -> {"replicas": [[rid, url]...] | null}
    {"token": T, "op": "event", "message": str}      -> {}

An unknown token (the attempt ended, or was killed) is a 404, a malformed body a 400.
Owns: the message codec (``parse_request``, ``answer``, the reply decoders), the
registry of live channels, and ``RemoteTaskChannel``, the node-side ``TaskChannel``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from typing import Any, Literal

import aiohttp

from disco import auth
from disco.backends.base import InputEntry, Replica, TaskChannel
from disco.lazydataclass import lazy_dataclass

PATH = "/disco/ctrl/task_channel"
OPS = ("input", "input_err", "event")
MODES = ("all", "include", "exclude")
MAX_IDS = 1_000_000
# Connecting may fail while the master restarts: the request was not sent, so it is
# safe to try again; anything else (a reply lost after the master acted) is not.
CONNECT_RETRIES = 10
CONNECT_RETRY_DELAY = 1.0


class ChannelClosed(Exception):
    """The attempt's channel is gone on the master (the attempt ended or was killed)."""


class BadMessage(ValueError):
    """A task channel request that does not follow the message format (a 400)."""


@lazy_dataclass(frozen=True)
class ChannelRequest:
    token: str
    op: Literal["input", "input_err", "event"]
    mode: Literal["all", "include", "exclude"] = "all"
    ids: tuple[int, ...] = ()
    input_id: int = 0
    message: str = ""


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, list) or len(value) > MAX_IDS:
        raise BadMessage("%s: a list of integers expected" % what)
    for v in value:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise BadMessage("%s: non-negative integers expected" % what)
    return tuple(value)


def parse_request(body: Any) -> ChannelRequest:
    """The request in a decoded JSON body; ``BadMessage`` says what is wrong."""
    if not isinstance(body, dict):
        raise BadMessage("a JSON object expected")
    token, op = body.get("token"), body.get("op")
    if not isinstance(token, str) or not token:
        raise BadMessage("'token': a non-empty string expected")
    if op not in OPS:
        raise BadMessage("'op': one of %s expected" % ", ".join(OPS))
    if op == "input":
        mode = body.get("mode")
        if mode not in MODES:
            raise BadMessage("'mode': one of %s expected" % ", ".join(MODES))
        return ChannelRequest(token, "input", mode=mode, ids=_ints(body.get("ids"), "'ids'"))
    if op == "input_err":
        input_id = body.get("input_id")
        if not isinstance(input_id, int) or isinstance(input_id, bool) or input_id < 0:
            raise BadMessage("'input_id': a non-negative integer expected")
        ids = _ints(body.get("replica_ids"), "'replica_ids'")
        return ChannelRequest(token, "input_err", input_id=input_id, ids=ids)
    message = body.get("message")
    if not isinstance(message, str):
        raise BadMessage("'message': a string expected")
    return ChannelRequest(token, "event", message=message)


async def answer(channel: TaskChannel, request: ChannelRequest) -> dict[str, Any]:
    """Carry out ``request`` on an in-process channel; the JSON reply."""
    if request.op == "input":
        flag, entries = await channel.get_inputs(request.mode, list(request.ids))
        return {"status": flag, "inputs": [e.to_json() for e in entries]}
    if request.op == "input_err":
        replicas = await channel.input_failed(request.input_id, list(request.ids))
        if replicas is None:
            return {"replicas": None}
        return {"replicas": [[r.replica_id, r.url] for r in replicas]}
    await channel.event(request.message)
    return {}


def decode_entry(value: Any) -> InputEntry:
    """An ``InputEntry`` from its ``to_json()`` form."""
    input_id, _ok, label, replicas = value
    return InputEntry(int(input_id), label, decode_replicas(replicas))


def decode_replicas(value: Any) -> tuple[Replica, ...]:
    return tuple(Replica(int(rid), str(url)) for rid, url in value)


class ChannelRegistry:
    """The live channels of the master's attempts, by token.

    ``call`` runs a request on the channel; requests still waiting (a deferred INPUT)
    when the token is dropped end with ``ChannelClosed``.
    """

    def __init__(self) -> None:
        self._channels: dict[str, TaskChannel] = {}
        self._calls: dict[str, set[asyncio.Future[dict[str, Any]]]] = {}
        self.served: Counter[str] = Counter()  # requests answered, by op

    def register(self, channel: TaskChannel) -> str:
        token = secrets.token_urlsafe(24)
        self._channels[token] = channel
        return token

    def unregister(self, token: str) -> None:
        self._channels.pop(token, None)
        for call in self._calls.pop(token, set()):
            call.cancel()

    def __contains__(self, token: str) -> bool:
        return token in self._channels

    def __len__(self) -> int:
        return len(self._channels)

    def tokens(self) -> list[str]:
        """The tokens of the attempts running now."""
        return list(self._channels)

    async def call(self, request: ChannelRequest) -> dict[str, Any]:
        channel = self._channels.get(request.token)
        if channel is None:
            raise ChannelClosed("no such task channel: the task attempt ended or was killed")
        call = asyncio.ensure_future(answer(channel, request))
        calls = self._calls.setdefault(request.token, set())
        calls.add(call)
        try:
            await asyncio.wait({call})
        except asyncio.CancelledError:
            call.cancel()
            raise
        finally:
            calls.discard(call)
        if call.cancelled():
            raise ChannelClosed("the task attempt ended while the request waited")
        self.served[request.op] += 1
        return call.result()


class RemoteTaskChannel:
    """``TaskChannel`` of one attempt over ``POST /disco/ctrl/task_channel``.

    Usable from any process that knows the master's URL, the attempt's token and the
    cluster's auth token.  Calls are made one at a time by the node runtime, so events
    reach the master in order.  ``ChannelClosed`` when the master does not know the
    token (any more).  Close it (``await close()`` or ``async with``) when done.
    """

    def __init__(
        self,
        master_url: str,
        token: str,
        auth_token: str = "",
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = master_url.rstrip("/") + PATH
        self.token = token
        self._headers = auth.headers({auth.TOKEN_SETTING: auth_token})
        self._session = session
        self._own_session = session is None

    async def __aenter__(self) -> RemoteTaskChannel:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def _post(self, body: dict[str, Any]) -> Any:
        if self._session is None:
            # no total timeout: a deferred INPUT reply waits for inputs (8.5)
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, connect=30)
            )
            self._own_session = True
        body["token"] = self.token
        for tries in range(CONNECT_RETRIES + 1):
            try:
                async with self._session.post(self.url, json=body, headers=self._headers) as resp:
                    text = await resp.text(errors="replace")
                    if resp.status == 404:
                        raise ChannelClosed(text.strip() or "task channel not found")
                    if resp.status != 200:
                        raise OSError(
                            "task channel: HTTP %d from %s: %s"
                            % (resp.status, self.url, text.strip()[:300])
                        )
                    return await resp.json(content_type=None)
            except aiohttp.ClientConnectorError:
                if tries == CONNECT_RETRIES:
                    raise
                await asyncio.sleep(CONNECT_RETRY_DELAY)
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_inputs(
        self, mode: Literal["all", "include", "exclude"], ids: list[int]
    ) -> tuple[Literal["done", "more"], list[InputEntry]]:
        reply = await self._post({"op": "input", "mode": mode, "ids": list(ids)})
        flag = "more" if reply["status"] == "more" else "done"
        return flag, [decode_entry(e) for e in reply["inputs"]]

    async def input_failed(self, input_id: int, replica_ids: list[int]) -> list[Replica] | None:
        reply = await self._post(
            {"op": "input_err", "input_id": input_id, "replica_ids": list(replica_ids)}
        )
        replicas = reply.get("replicas")
        return None if replicas is None else list(decode_replicas(replicas))

    async def event(self, message: str) -> None:
        await self._post({"op": "event", "message": message})
