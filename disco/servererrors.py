"""Unexpected errors of the project's HTTP servers: rendered, logged and counted.

Bad input gets a 4xx with a short reason; a ``500`` is a bug (docs/failures.md).  Every
aiohttp application of the project (the master, node data servers, blob upload servers)
calls ``guard(app)``:

* ``crash_middleware`` turns an exception a handler did not expect into a logged
  ``500 Internal server error`` whose text carries no detail (no server paths);
* an ``on_response_prepare`` hook counts every ``500`` response the process sends,
  whoever produced it (a handler, the middleware, or aiohttp itself when preparing a
  response fails), in ``SERVER_ERRORS``.  The test suite fails a test during which the
  count grew (tests/conftest.py).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable

from aiohttp import web

logger = logging.getLogger(__name__)

INTERNAL = "Internal server error"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ServerErrorCount:
    """How many 500s this process served, and the newest few requests that got one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0
        self.recent: deque[str] = deque(maxlen=20)

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.count += 1
            self.recent.append("%s %s" % (method, path[:200]))

    def since(self, count: int) -> list[str]:
        """The requests (newest 20 at most) that got a 500 after the count was ``count``."""
        with self._lock:
            new = self.count - count
            return list(self.recent)[-new:] if new > 0 else []


SERVER_ERRORS = ServerErrorCount()
GUARDED = web.AppKey("disco_guarded", bool)


@web.middleware
async def crash_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except (web.HTTPException, ConnectionError):
        raise  # a client that went away is no server error
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        return web.Response(status=500, text=INTERNAL, content_type="text/plain")


async def _count_500(request: web.BaseRequest, response: web.StreamResponse) -> None:
    if response.status == 500:
        SERVER_ERRORS.record(request.method, request.path)


def guard(app: web.Application, *, middleware: bool = True) -> web.Application:
    """Count ``app``'s 500s; with ``middleware``, also render unexpected exceptions as a
    logged 500 (apps with their own error middleware pass ``False``)."""
    if middleware:
        app.middlewares.append(crash_middleware)
    app.on_response_prepare.append(_count_500)
    app[GUARDED] = True
    return app
