"""The master's HTTP error type and the one middleware that renders errors (master-api.md 1.2).

``MasterError`` carries a status and a message; ``render`` picks the 1.2 body: JSON
strings for 400s, ``Not found.`` text for 404s, plain text otherwise.  A full disk (or
a write to a read-only master) answers ``507`` saying so.  Anything else a handler
raises becomes a logged ``500 Internal server error`` and the master keeps serving.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from disco.master.store import StoreReadOnly
from disco.node.diskspace import is_disk_full_error
from disco.servererrors import INTERNAL

logger = logging.getLogger(__name__)

NOT_FOUND = "Not found."
INSUFFICIENT_STORAGE = 507  # a full disk; not 503, which clients retry


class MasterError(Exception):
    """An HTTP error answer: ``status`` and ``message`` (JSON string body if ``as_json``)."""

    def __init__(self, status: int, message: str, *, as_json: bool = False) -> None:
        super().__init__(status, message, as_json)
        self.status = status
        self.message = message
        self.as_json = as_json

    def __str__(self) -> str:
        return "%d %s" % (self.status, self.message)

    def response(self) -> web.Response:
        if self.as_json:
            return web.Response(
                status=self.status, text=json.dumps(self.message), content_type="application/json"
            )
        return web.Response(status=self.status, text=self.message, content_type="text/plain")


def bad_request(message: str) -> MasterError:
    """400 with a JSON string message (2.4, 13.5)."""
    return MasterError(400, message, as_json=True)


def not_found() -> MasterError:
    return MasterError(404, NOT_FOUND)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MasterError as exc:
        return exc.response()
    except web.HTTPNotFound:
        return not_found().response()  # 1.2: "Not found." for unrouted paths too
    except (web.HTTPException, ConnectionError):
        raise  # a client that went away is no server error
    except Exception as exc:
        if is_disk_full_error(exc) or isinstance(exc, StoreReadOnly):
            # A full disk is no bug: say so (no server path in the text).
            logger.error("%s %s failed: %s", request.method, request.path, exc)
            text = str(exc) if isinstance(exc, StoreReadOnly) else "the master's disk is full"
            return MasterError(INSUFFICIENT_STORAGE, text).response()
        logger.exception("%s %s failed", request.method, request.path)
        return web.Response(status=500, text=INTERNAL, content_type="text/plain")
