"""The master's ``/ddfs/...`` endpoints (ddfs.md 2.3, 2.4).

Success bodies are compact JSON; errors are the plain-text bodies of 2.3.  Tokens arrive
as ``Authorization: Basic base64("token:" + TOKEN)`` (1.10).  Anything else below
``/ddfs/`` is a file of the master host's DDFS root (GET/HEAD, 2.4.14).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import hdrs, web

from disco.ddfs import errors
from disco.ddfs.errors import DDFSError
from disco.ddfs.master import DDFSMaster
from disco.ddfs.names import is_url_list, valid_name
from disco.ddfs.tagdoc import MAX_ATTR_NAME, MAX_ATTR_VALUE, READ_TOKEN, URLS, WRITE_TOKEN
from disco.node.dataserver import serve_gated
from disco.safenames import STORED_NAME_MAX

DDFS = web.AppKey("ddfs_master", DDFSMaster)
MAX_TAG_BODY = 512 * 1024 * 1024

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(value: Any) -> web.Response:
    return web.Response(
        text=json.dumps(value, separators=(",", ":")), content_type="application/json"
    )


def _text(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, content_type="text/plain")


def _answers(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except DDFSError as exc:
            return _text(exc.status, exc.message)

    return wrapped


def ddfs(request: web.Request) -> DDFSMaster:
    return request.app[DDFS]


def request_token(request: web.Request) -> str | None:
    """The token of ``Authorization: Basic base64("token:TOKEN")``; else ``None``."""
    value = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, token = decoded.partition(":")
    return token if sep and user == "token" else None


def _flag(request: web.Request, key: str) -> bool:
    return bool(request.query.get(key, ""))  # [quirk] any non-empty value is on


async def _body(request: web.Request) -> tuple[bytes, Any]:
    if request.content_length is not None and request.content_length > MAX_TAG_BODY:
        raise DDFSError(403, errors.INVALID_REQUEST)
    try:
        raw = await request.content.read(MAX_TAG_BODY + 1)
    except Exception:
        raise DDFSError(403, errors.INVALID_REQUEST) from None
    if len(raw) > MAX_TAG_BODY:
        raise DDFSError(403, errors.INVALID_REQUEST)
    try:
        body = json.loads(raw.decode("utf-8"))
        json.dumps(body, ensure_ascii=False).encode("utf-8")  # lone surrogates
    except (UnicodeError, ValueError, RecursionError):
        raise DDFSError(403, errors.INVALID_BODY) from None
    return raw, body


# -- new_blob (2.4.1) ---------------------------------------------------------------------
@routes.route("*", "/ddfs/new_blob/{prefix:.*}")
@_answers
async def new_blob(request: web.Request) -> web.StreamResponse:
    if request.method != hdrs.METH_GET:
        raise DDFSError(404, errors.NOT_FOUND)
    query = request.query
    replicas = None
    if query.get("replicas"):
        try:
            replicas = int(query["replicas"])
        except ValueError:
            raise DDFSError(400, errors.INVALID_REQUEST) from None  # 0.5: a 500
        if replicas < 0:
            raise DDFSError(400, errors.INVALID_REQUEST)

    def hosts(key: str) -> list[str]:
        return [h for h in query.get(key, "").split(",") if h]

    urls = await ddfs(request).new_blob(
        request.match_info["prefix"], replicas, hosts("exclude"), hosts("include")
    )
    return _json(urls)


# -- tags (2.4.4 - 2.4.11) ----------------------------------------------------------------
@routes.route("*", "/ddfs/tags{prefix:.*}")
@_answers
async def list_tags(request: web.Request) -> web.StreamResponse:
    if request.method != hdrs.METH_GET:
        raise DDFSError(404, errors.NOT_FOUND)
    prefix = request.match_info["prefix"].strip("/")
    return _json(await ddfs(request).tags.list(prefix))


@routes.route("*", "/ddfs/tag/{rest:.*}")
@_answers
async def tag(request: web.Request) -> web.StreamResponse:
    name, _, attr = request.match_info["rest"].partition("/")
    method = request.method
    if method not in (hdrs.METH_GET, hdrs.METH_POST, hdrs.METH_PUT, hdrs.METH_DELETE):
        raise DDFSError(404, errors.NOT_FOUND)
    if not valid_name(name):
        raise DDFSError(403, errors.INVALID_TAG)
    if method in (hdrs.METH_POST, hdrs.METH_PUT) and not valid_name(name, STORED_NAME_MAX):
        raise DDFSError(403, errors.INVALID_TAG)  # its version file would not fit on disk
    if len(attr.encode("utf-8")) > MAX_ATTR_NAME:
        raise DDFSError(403, errors.ATTR_NAME_TOO_BIG)
    tags = ddfs(request).tags
    token = request_token(request)
    if method == hdrs.METH_GET:
        if attr:
            return _json(await tags.get_attr(name, attr, token))
        return _json(await tags.get(name, token))
    if method == hdrs.METH_DELETE:
        if attr:
            return _json(await tags.del_attr(name, attr, token))
        return _json(await tags.delete(name, token))
    raw, body = await _body(request)
    if method == hdrs.METH_POST:
        if attr:
            raise DDFSError(404, errors.NOT_FOUND)
        if not is_url_list(body):
            raise DDFSError(403, errors.INVALID_URLS)
        urls = await tags.append(
            name, body, token, update=_flag(request, "update"), delayed=_flag(request, "delayed")
        )
        return _json(urls)
    attr = attr or URLS  # PUT /ddfs/tag/NAME is PUT .../ddfs:urls
    if attr.startswith("ddfs:") and attr not in (URLS, READ_TOKEN, WRITE_TOKEN):
        raise DDFSError(404, errors.ATTR_NOT_FOUND)
    if attr == URLS:
        if not is_url_list(body):
            raise DDFSError(403, errors.INVALID_ATTR)
    elif not isinstance(body, str):
        raise DDFSError(403, errors.INVALID_ATTR)
    elif not attr.startswith("ddfs:") and len(raw) > MAX_ATTR_VALUE:
        raise DDFSError(403, errors.ATTR_VALUE_TOO_BIG)
    return _json(await tags.set_attr(name, attr, body, token))


# -- GC control (2.4.12) ------------------------------------------------------------------
@routes.route("*", "/ddfs/ctrl/{op}")
@_answers
async def ctrl(request: web.Request) -> web.StreamResponse:
    master = ddfs(request)
    op = request.match_info["op"]
    if request.method == hdrs.METH_GET:
        if op == "gc_status":
            return _json(master.gc.status())
        if op == "gc_start":
            return _json(master.gc.start())
        if op == "gc_stats":
            return _json(master.gc.stats())
        if op == "safe_gc_blacklist":
            return _json(master.gc.safe_blacklist)
        if op == "tag_versions":  # an addition beyond 0.5 (the web UI)
            name = request.query.get("tag", "")
            if not valid_name(name):
                raise DDFSError(403, errors.INVALID_TAG)
            return _json(await master.tag_versions(name))
    elif request.method == hdrs.METH_POST and op == "hosted_tags":
        _raw, host = await _body(request)
        if not isinstance(host, str) or host not in master.view.hosts():
            raise DDFSError(404, errors.UNKNOWN_HOST)
        return _json(await master.gc.hosted_tags(host))
    raise DDFSError(404, errors.NOT_FOUND)


# -- files of the master host (2.4.3, 2.4.14) -------------------------------------------
@routes.route("*", "/ddfs/{path:.*}")
@_answers
async def files(request: web.Request) -> web.StreamResponse:
    if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
        raise DDFSError(404, errors.NOT_FOUND)
    master = ddfs(request)
    return await serve_gated(
        request, master.downloads, master.local_root, request.match_info["path"]
    )
