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

from aiohttp import hdrs, web

from disco.auth import AuthPolicy, middleware
from disco.ddfs.gate import UPLOADS_BUSY, TransferGate, TransferLimits
from disco.ddfs.names import InvalidName, parse_object_id
from disco.ddfs.node import DDFSNode, NoSpace
from disco.node.dataserver import strip_proxy, text_response

logger = logging.getLogger(__name__)

MAX_BLOB = 1 << 40  # 1 TiB
WRITE_BATCH = 1024 * 1024


async def receive_blob(node: DDFSNode, oid: str, request: web.Request) -> str:
    """Write the request body as blob ``oid``; the canonical URL.  Raises ``InvalidName``,
    ``FileExistsError``, ``NoSpace`` or ``OSError``; nothing stays behind on failure."""
    size = request.content_length or 0
    upload = await asyncio.to_thread(node.begin_blob, oid, size)
    writing: asyncio.Future[None] | None = None  # the disk write runs while we receive
    try:
        pending: list[bytes] = []
        buffered = received = 0
        async for chunk in request.content.iter_chunked(WRITE_BATCH):
            pending.append(chunk)
            buffered += len(chunk)
            received += len(chunk)
            if received > MAX_BLOB:
                raise OSError("Write failed: blob larger than 1 TiB")
            if buffered >= WRITE_BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(upload.write, b"".join(pending)))
                pending, buffered = [], 0
        if writing is not None:
            await writing
        if pending:
            await asyncio.to_thread(upload.write, b"".join(pending))
        if request.content_length is not None and upload.size != request.content_length:
            raise OSError("Write failed: body cut off")
        return await asyncio.to_thread(upload.commit)
    except BaseException:
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)  # before closing the file
        await asyncio.to_thread(upload.abort)
        raise


def create_put_app(
    node: DDFSNode, limits: TransferLimits | None = None, auth: AuthPolicy | None = None
) -> web.Application:
    """The upload server of one node; uploads need the cluster's token when ``auth`` has
    one (``disco.auth``)."""
    gate = TransferGate(limits)

    async def handle(request: web.Request) -> web.StreamResponse:
        path = strip_proxy(request.path)
        if not path.startswith("/ddfs/"):
            return text_response(404, "Not found.")
        if request.method != hdrs.METH_PUT:
            return text_response(501, "Method not supported")
        oid = path[len("/ddfs/") :]
        try:
            parse_object_id(oid)
        except InvalidName:
            return text_response(403, "Invalid blob name")
        if await gate.enter() != "ok":
            return text_response(503, UPLOADS_BUSY)
        try:
            url = await receive_blob(node, oid, request)
        except FileExistsError as exc:
            return text_response(500, str(exc))
        except NoSpace as exc:
            return text_response(500, "Write failed: %s" % exc)
        except Exception as exc:  # cut-off body, disk errors: the staging file is gone
            logger.warning("upload of %s to %s failed: %s", oid, node.host, exc)
            return text_response(500, "Write failed: %s" % exc)
        finally:
            gate.leave()
        response = web.Response(status=201, text=json.dumps(url), content_type="application/json")
        response.force_close()
        return response

    middlewares = [middleware(auth)] if auth and auth.enabled else []
    app = web.Application(middlewares=middlewares, client_max_size=MAX_BLOB)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
