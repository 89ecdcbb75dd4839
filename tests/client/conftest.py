"""A tiny HTTP server for client unit tests that need no master (event offsets, Range).

``events_server`` serves a mutable events file at ``/disco/ctrl/rawevents`` with the
``Range`` semantics of master-api.md 4.3 (an empty 206 past the end) and a fixed
``jobinfo``; tests change ``server.events`` / ``server.pipeline`` between calls.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web


class EventsServer:
    def __init__(self) -> None:
        self.events = b""
        self.pipeline: list[list[Any]] = []
        self.ranges: list[str | None] = []
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None

    async def rawevents(self, request: web.Request) -> web.Response:
        rng = request.headers.get("Range")
        self.ranges.append(rng)
        if not rng:
            return web.Response(body=self.events, content_type="text/plain")
        start = int(rng.split("=", 1)[1].split("-", 1)[0])
        body = self.events[start:]
        end = max(start, len(self.events) - 1)
        headers = {"Content-Range": "bytes %d-%d/%d" % (start, end, len(self.events))}
        return web.Response(status=206, body=body, headers=headers, content_type="text/plain")

    async def jobinfo(self, request: web.Request) -> web.Response:
        return web.json_response({"active": "active", "pipeline": self.pipeline})

    async def _start(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_get("/disco/ctrl/rawevents", self.rawevents)
        app.router.add_get("/disco/ctrl/jobinfo", self.jobinfo)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def start(self) -> EventsServer:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = "http://127.0.0.1:%d" % sock.getsockname()[1]
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(sock), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture
def events_server() -> Iterator[EventsServer]:
    server = EventsServer().start()
    yield server
    server.stop()
