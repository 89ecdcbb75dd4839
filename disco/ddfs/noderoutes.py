"""The node side of the ``NodeStore`` seam: ``POST /ddfs/node/<op>`` on ``DDFS_PUT_PORT``.

``HttpNodeStore`` (``disco.ddfs.nodehttp``) calls these routes; each one is a method of
``DDFSNode`` with a JSON object in and a JSON value out:

=================  ==========================================  ===========================
op                 body                                        answer
=================  ==========================================  ===========================
disk_usage         ``{}``                                      ``{"free": KiB, "used": KiB}``
find_blob          ``{"oid"}``                                 ``{"volume": str | null}``
replicate_blob     ``{"oid", "url"}`` (canonical disco:// URL  ``{"url"}`` of the new copy
                   of a copy on another node)
write_tag          ``{"name", "ts", "data"}`` (the document)   ``{"handle"}``
commit_tag         ``{"handle"}``                              ``{"url"}``
abort_tag          ``{"handle"}``                              ``{}``
read_tag           ``{"name", "ts", "volume"}``                ``{"data"}``
tag_version        ``{"name"}``                                ``{"ts", "volume"}`` or ``null``
has_tag_version    ``{"name", "ts"}``                          ``{"present": bool}``
tag_names          ``{}``                                      ``[name, ...]``
rescan_tags        ``{}``                                      ``{}``
scan               ``{"partial_expires", "now"}`` (seconds)    ``[object, ...]``
objects            ``{"kind"}``                                ``[object, ...]``
delete             ``{"object", "paranoid"}``                  ``{}``
=================  ==========================================  ===========================

An object is ``{"kind", "oid", "volume", "size"}``.  Every route needs the cluster's
token when one is set (``disco.auth``: also the "reads", they are the master's business
only).  Names, ids, timestamps, volumes and handles are validated before any file is
touched; bad input gets ``400``, a missing file ``404``, an existing blob ``409``, a source
node that does not hand its copy over ``424``, a full disk ``507``, any other storage error
``503``; never a ``500``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web

from disco.auth import HEADER, UNAUTHORIZED, AuthPolicy
from disco.ddfs.blobstream import SourceUnavailable, fetch_blob, source_http_url
from disco.ddfs.gate import UPLOADS_BUSY, TransferGate
from disco.ddfs.names import (
    DELETED_TAG,
    InvalidName,
    Timestamp,
    object_id,
    parse_ddfs_url,
    parse_object_id,
    valid_name,
)
from disco.ddfs.node import KINDS, DDFSNode, NoSpace
from disco.ddfs.nodestore import stored_from_json, stored_to_json
from disco.safenames import UnsafeName, check_host_name, check_object_id_length

logger = logging.getLogger(__name__)

PREFIX = "/ddfs/node/"
MAX_BODY = 1 << 30  # a tag document may be large (the master accepts 512 MiB bodies)


class NodeRequestError(Exception):
    """An answer other than 200: ``status`` and a short text (never a server path)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def _bad(text: str) -> NodeRequestError:
    return NodeRequestError(400, text)


# -- validation ---------------------------------------------------------------------------
def _field(body: dict[str, Any], key: str) -> Any:
    if key not in body:
        raise _bad("missing %s" % key)
    return body[key]


def _tag_name(body: dict[str, Any]) -> str:
    name = _field(body, "name")
    if not (name == DELETED_TAG or valid_name(name)):
        raise _bad("invalid tag name")
    return str(name)


def _ts(body: dict[str, Any]) -> Timestamp:
    value = _field(body, "ts")
    if not isinstance(value, str) or len(value) > 64:
        raise _bad("invalid timestamp")
    try:
        return Timestamp.parse(value)
    except InvalidName:
        raise _bad("invalid timestamp") from None


def _oid(body: dict[str, Any]) -> str:
    oid = _field(body, "oid")
    if not isinstance(oid, str):
        raise _bad("invalid object id")
    try:
        check_object_id_length(oid)
        parse_object_id(oid)
    except (InvalidName, UnsafeName):
        raise _bad("invalid object id") from None
    return oid


def _volume(node: DDFSNode, body: dict[str, Any]) -> str:
    volume = _field(body, "volume")
    if not node.is_volume(volume):
        raise _bad("unknown volume")
    return str(volume)


def _seconds(body: dict[str, Any], key: str) -> float:
    value = _field(body, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad("%s: a number expected" % key)
    try:
        seconds = float(value)
    except OverflowError:
        raise _bad("%s: out of range" % key) from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _bad("%s: out of range" % key)
    return seconds


def _handle(node: DDFSNode, body: dict[str, Any]) -> str:
    handle = _field(body, "handle")
    try:
        node.parse_staging(handle)
    except InvalidName:
        raise _bad("invalid staging handle") from None
    return str(handle)


def _text(body: dict[str, Any], key: str, limit: int = MAX_BODY) -> str:
    value = _field(body, key)
    if not isinstance(value, str) or len(value) > limit:
        raise _bad("%s: a string expected" % key)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("%s: not valid Unicode" % key) from None
    return value


# -- the routes ---------------------------------------------------------------------------
Op = Callable[[dict[str, Any]], Awaitable[Any]]


def node_ops(
    node: DDFSNode, auth: AuthPolicy, disco_port: int | None, gate: TransferGate
) -> dict[str, Op]:
    """The operations of one node, by name (each validates its body first)."""

    async def disk_usage(body: dict[str, Any]) -> Any:
        free, used = await asyncio.to_thread(node.disk_usage)
        return {"free": free, "used": used}

    async def find_blob(body: dict[str, Any]) -> Any:
        return {"volume": await asyncio.to_thread(node.find_blob, _oid(body))}

    async def replicate_blob(body: dict[str, Any]) -> Any:
        oid = _oid(body)
        url = _text(body, "url", 2048)
        source = parse_ddfs_url(url)
        if not url.startswith("disco://") or source is None:
            raise _bad("url: a canonical disco:// URL expected")
        if source.kind != "blob" or source.oid != oid:
            raise _bad("url: not a canonical URL of this blob")
        try:
            check_host_name(source.host)
        except UnsafeName:
            raise _bad("url: invalid host") from None
        if disco_port is None:
            raise NodeRequestError(409, "This node does not know DISCO_PORT: cannot replicate")
        if await gate.enter() != "ok":
            raise NodeRequestError(503, UPLOADS_BUSY)
        try:
            headers = {HEADER: auth.token} if auth.enabled else {}
            http = source_http_url(url, disco_port)
            return {"url": await fetch_blob(node, oid, http, headers)}
        finally:
            gate.leave()

    async def write_tag(body: dict[str, Any]) -> Any:
        name, ts = _tag_name(body), _ts(body)
        data = _text(body, "data").encode("utf-8")
        try:
            check_object_id_length(object_id(name, ts))
        except UnsafeName:
            raise _bad("tag name too long") from None
        return {"handle": await asyncio.to_thread(node.write_tag, name, ts, data)}

    async def commit_tag(body: dict[str, Any]) -> Any:
        return {"url": await asyncio.to_thread(node.commit_tag, _handle(node, body))}

    async def abort_tag(body: dict[str, Any]) -> Any:
        await asyncio.to_thread(node.abort_tag, _handle(node, body))
        return {}

    async def read_tag(body: dict[str, Any]) -> Any:
        name, ts, volume = _tag_name(body), _ts(body), _volume(node, body)
        data = await asyncio.to_thread(node.read_tag, name, ts, volume)
        return {"data": data.decode("utf-8", "replace")}

    async def tag_version(body: dict[str, Any]) -> Any:
        found = node.tag_version(_tag_name(body))
        return None if found is None else {"ts": str(found[0]), "volume": found[1]}

    async def has_tag_version(body: dict[str, Any]) -> Any:
        name, ts = _tag_name(body), _ts(body)
        return {"present": await asyncio.to_thread(node.has_tag_version, name, ts)}

    async def tag_names(body: dict[str, Any]) -> Any:
        return node.tag_names()

    async def rescan_tags(body: dict[str, Any]) -> Any:
        await asyncio.to_thread(node.rescan_tags)
        return {}

    async def scan(body: dict[str, Any]) -> Any:
        expires, now = _seconds(body, "partial_expires"), _seconds(body, "now")
        found = await asyncio.to_thread(node.scan, expires, now)
        return [stored_to_json(o) for o in found]

    async def objects(body: dict[str, Any]) -> Any:
        kind = _field(body, "kind")
        if kind not in KINDS:
            raise _bad("kind: blob or tag")
        return [stored_to_json(o) for o in await asyncio.to_thread(node.objects, kind)]

    async def delete(body: dict[str, Any]) -> Any:
        try:
            obj = stored_from_json(_field(body, "object"))
            check_object_id_length(obj.oid)
        except (InvalidName, UnsafeName):
            raise _bad("invalid object") from None
        if not node.is_volume(obj.volume):
            raise _bad("unknown volume")
        paranoid = body.get("paranoid", False)
        if not isinstance(paranoid, bool):
            raise _bad("paranoid: true or false")
        await asyncio.to_thread(node.delete, obj, paranoid)
        return {}

    ops = [disk_usage, find_blob, replicate_blob, write_tag, commit_tag, abort_tag, read_tag]
    ops += [tag_version, has_tag_version, tag_names, rescan_tags, scan, objects, delete]
    return {op.__name__: op for op in ops}


def _answer(status: int, value: Any) -> web.Response:
    if status != 200:
        response = web.Response(status=status, text=str(value), content_type="text/plain")
        if status == 401:
            response.force_close()  # the unread body is not drained
        return response
    return web.Response(
        text=json.dumps(value, separators=(",", ":")), content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise NodeRequestError(413, "body too large")
    try:
        raw = await request.content.read(MAX_BODY + 1)
    except Exception:
        raise _bad("body cut off") from None
    if len(raw) > MAX_BODY:
        raise NodeRequestError(413, "body too large")
    try:
        body = json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeError, ValueError, RecursionError):
        raise _bad("body: JSON expected") from None
    if not isinstance(body, dict):
        raise _bad("body: a JSON object expected")
    return body


def add_node_routes(
    app: web.Application,
    node: DDFSNode,
    auth: AuthPolicy,
    disco_port: int | None,
    gate: TransferGate | None = None,
) -> None:
    """Serve ``POST /ddfs/node/<op>`` for ``node`` on ``app`` (before its catch-all)."""
    ops = node_ops(node, auth, disco_port, gate or TransferGate())

    async def handle(request: web.Request) -> web.StreamResponse:
        if auth.enabled and not auth.accepts(request.headers):
            return _answer(401, UNAUTHORIZED)
        op = ops.get(request.match_info["op"])
        if op is None:
            return _answer(404, "Unknown node operation")
        if request.method != hdrs.METH_POST:
            return _answer(405, "POST expected")
        try:
            return _answer(200, await op(await _body(request)))
        except NodeRequestError as exc:
            return _answer(exc.status, exc.text)
        except (InvalidName, UnsafeName) as exc:
            return _answer(400, str(exc) if isinstance(exc, UnsafeName) else "invalid name")
        except FileNotFoundError:
            return _answer(404, "Not found")
        except FileExistsError:
            return _answer(409, "File exists")
        except NoSpace as exc:
            return _answer(507, "Write failed: %s" % exc)
        except SourceUnavailable as exc:
            return _answer(424, "Cannot fetch the source copy: %s" % exc)
        except OSError as exc:
            logger.warning("node %s: %s failed: %r", node.host, request.path, exc)
            return _answer(503, "Storage error: %s" % (exc.strerror or type(exc).__name__))

    app.router.add_route("*", PREFIX + "{op}", handle)
