"""A node's blob upload server on ``DDFS_PUT_PORT`` (ddfs.md 2.4.2, 2.2).

``PUT /ddfs/<NAME$TS>[?]`` streams the body (``Content-Length`` or chunked) into a
staging file of the node's emptiest volume and renames it into place only when the whole
body arrived and was fsync'ed: a cut-off upload leaves no blob.  Answers 201 with the
canonical ``disco://`` URL as a JSON string.  At most ``active`` uploads run at once,
``queue`` more wait (up to ``wait`` seconds); beyond that the answer is 503.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass

from aiohttp import hdrs, web

from disco.ddfs.names import InvalidName, parse_object_id
from disco.ddfs.node import DDFSNode, NoSpace
from disco.node.dataserver import strip_proxy

logger = logging.getLogger(__name__)

MAX_BLOB = 1 << 40  # 1 TiB
WRITE_BATCH = 1024 * 1024
BUSY = "Maximum number of uploaders reached. Try again later"


@dataclass(frozen=True)
class TransferLimits:
    """Concurrency of one node's uploads (2.2): active, waiting, seconds a request waits."""

    active: int = 3
    queue: int = 100
    wait: float = 60.0


def _text(status: int, text: str) -> web.Response:
    response = web.Response(status=status, text=text, content_type="text/plain")
    response.force_close()
    return response


class _Gate:
    """``active`` slots and a bounded number of waiters."""

    def __init__(self, limits: TransferLimits) -> None:
        self.limits = limits
        self._slots = asyncio.Semaphore(limits.active)
        self._waiting = 0

    async def enter(self) -> bool:
        if self._slots.locked() and self._waiting >= self.limits.queue:
            return False
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.limits.wait)
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
        return True

    def leave(self) -> None:
        self._slots.release()


async def receive_blob(node: DDFSNode, oid: str, request: web.Request) -> str:
    """Write the request body as blob ``oid``; the canonical URL.  Raises ``InvalidName``,
    ``FileExistsError``, ``NoSpace`` or ``OSError``; nothing stays behind on failure."""
    size = request.content_length or 0
    upload = await asyncio.to_thread(node.begin_blob, oid, size)
    try:
        pending: list[bytes] = []
        buffered = 0
        async for chunk in request.content.iter_chunked(WRITE_BATCH):
            pending.append(chunk)
            buffered += len(chunk)
            if upload.size + buffered > MAX_BLOB:
                raise OSError("Write failed: blob larger than 1 TiB")
            if buffered >= WRITE_BATCH:
                await asyncio.to_thread(upload.write, b"".join(pending))
                pending, buffered = [], 0
        if pending:
            await asyncio.to_thread(upload.write, b"".join(pending))
        if request.content_length is not None and upload.size != request.content_length:
            raise OSError("Write failed: body cut off")
        return await asyncio.to_thread(upload.commit)
    except BaseException:
        await asyncio.to_thread(upload.abort)
        raise


def create_put_app(node: DDFSNode, limits: TransferLimits | None = None) -> web.Application:
    """The upload server of one node."""
    gate = _Gate(limits or TransferLimits())

    async def handle(request: web.Request) -> web.StreamResponse:
        path = strip_proxy(request.path)
        if not path.startswith("/ddfs/"):
            return _text(404, "Not found.")
        if request.method != hdrs.METH_PUT:
            return _text(501, "Method not supported")
        oid = path[len("/ddfs/") :]
        try:
            parse_object_id(oid)
        except InvalidName:
            return _text(403, "Invalid blob name")
        if not await gate.enter():
            return _text(503, BUSY)
        try:
            url = await receive_blob(node, oid, request)
        except FileExistsError as exc:
            return _text(500, str(exc))
        except NoSpace as exc:
            return _text(500, "Write failed: %s" % exc)
        except Exception as exc:  # cut-off body, disk errors: the staging file is gone
            logger.warning("upload of %s to %s failed: %s", oid, node.host, exc)
            return _text(500, "Write failed: %s" % exc)
        finally:
            gate.leave()
        response = web.Response(status=201, text=json.dumps(url), content_type="application/json")
        response.force_close()
        return response

    app = web.Application(client_max_size=MAX_BLOB)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
