"""A node's blob upload server on ``DDFS_PUT_PORT`` (ddfs.md 2.4.2, 2.2).

``PUT /ddfs/<NAME$TS>[?]`` streams the body (``Content-Length`` or chunked) into a
staging file of the node's emptiest volume and renames it into place only when the whole
body arrived and was fsync'ed: a cut-off upload leaves no blob.  Answers 201 with the
canonical ``disco://`` URL as a JSON string.  At most ``active`` uploads run at once,
``queue`` more wait (up to ``wait`` seconds); beyond that the answer is 503.

Served by ``disco.node.serving.serve_first``, the port's connections first reach the
upload front (``disco.ddfs.uploadfront``), which receives plain blob uploads itself,
straight into the disk buffer, with the answers of ``handle`` below, and hands the
others to this app.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from aiohttp import hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from disco.auth import AuthPolicy, middleware
from disco.ddfs.blobstream import (
    MAX_BLOB,
    WRITE_BATCH,
    BadUpload,
    store_chunks,
    upload_error_reason,
)
from disco.ddfs.gate import UPLOADS_BUSY, TransferGate, TransferLimits
from disco.ddfs.names import InvalidName, parse_object_id
from disco.ddfs.node import DDFSNode, NoSpace
from disco.ddfs.noderoutes import add_node_routes
from disco.ddfs.uploadfront import UPLOADS, Uploads
from disco.node.dataserver import strip_proxy, text_response
from disco.safenames import UnsafeName, check_object_id_length
from disco.servererrors import guard

logger = logging.getLogger(__name__)


async def _chunks(request: web.Request) -> AsyncIterator[bytes]:
    try:
        async for chunk in request.content.iter_chunked(WRITE_BATCH):
            yield chunk
    except (ConnectionError, HttpProcessingError, asyncio.IncompleteReadError):
        raise BadUpload("body cut off") from None


#: ``recv`` size of an upload's connection (asyncio's default is 256 KiB): fewer, larger
#: reads of a big body through the event loop.
RECV_SIZE = 1024 * 1024


async def receive_blob(node: DDFSNode, oid: str, request: web.Request) -> str:
    """Write the request body as blob ``oid``; the canonical URL (see ``store_chunks``)."""
    transport = request.transport
    if transport is not None and isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = RECV_SIZE  # type: ignore[attr-defined]
    return await store_chunks(node, oid, _chunks(request), request.content_length)


def create_put_app(
    node: DDFSNode,
    limits: TransferLimits | None = None,
    auth: AuthPolicy | None = None,
    *,
    disco_port: int | None = None,
) -> web.Application:
    """The upload server of one node; uploads need the cluster's token when ``auth`` has
    one (``disco.auth``).  It also serves the node operations of the DDFS master under
    ``/ddfs/node/`` (``disco.ddfs.noderoutes``); ``disco_port``: where the other nodes'
    data servers are, for re-replication."""
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
            check_object_id_length(oid)  # the file and its staging name must fit on disk
        except (InvalidName, UnsafeName):
            return text_response(403, "Invalid blob name")
        if await gate.enter() != "ok":
            return text_response(503, UPLOADS_BUSY)
        try:
            url = await receive_blob(node, oid, request)
        except FileExistsError:
            # 0.5: 500 "File exists (path: ...)"; a repeated PUT is a conflict, and error
            # texts never carry a server path (docs/decisions.md)
            return text_response(409, "File exists")
        except BadUpload as exc:
            return text_response(400, "Write failed: %s" % exc)
        except NoSpace as exc:
            return text_response(500, "Write failed: %s" % exc)
        except Exception as exc:  # cut-off body, disk errors: the staging file is gone
            logger.warning("upload of %s to %s failed: %r", oid, node.host, exc)
            return text_response(500, "Write failed: %s" % upload_error_reason(exc))
        finally:
            gate.leave()
        response = web.Response(status=201, text=json.dumps(url), content_type="application/json")
        response.force_close()
        return response

    middlewares = [middleware(auth)] if auth and auth.enabled else []
    app = guard(web.Application(middlewares=middlewares, client_max_size=MAX_BLOB))
    # served through ``disco.node.serving.serve_first``, plain blob PUTs skip the app
    # (``disco.ddfs.uploadfront``); it answers them the same way
    app[UPLOADS] = Uploads(node, auth or AuthPolicy(), gate)
    add_node_routes(app, node, auth or AuthPolicy(), disco_port, gate)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
