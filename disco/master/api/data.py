"""Version, node data, proxy prefix and static UI files (master-api.md 1.1, 2.1, 2.5, 2.6).

``GET /disco/<path>`` serves ``<DISCO_DATA>/<path>`` through the node data server's
``serve_file`` (GET only on the master, 2.5).  ``/proxy/<node>/<method>/<rest>`` is
routed again as ``/<rest>`` (1.1).  Anything else is a static file of ``DISCO_WWW_ROOT``.
"""

from __future__ import annotations

import os

from aiohttp import web

from disco.master.api.common import json_response, runtime
from disco.master.errors import not_found
from disco.node.dataserver import safe_path, serve_file, strip_proxy

routes = web.RouteTableDef()
static_routes = web.RouteTableDef()


@routes.route("*", "/disco/version")
async def version(request: web.Request) -> web.StreamResponse:
    if request.method != "GET":
        raise not_found()
    return json_response(runtime(request).config.version)


@routes.route("*", "/proxy/{tail:.*}")
async def proxy(request: web.Request) -> web.StreamResponse:
    """1.1: drop ``/proxy/<node>/<method>`` and route the request again."""
    path = strip_proxy(request.path)
    if path.startswith("/proxy/"):
        raise not_found()
    url = request.rel_url.with_path(path).with_query(request.rel_url.query)
    inner = request.clone(rel_url=url)
    match = await request.app.router.resolve(inner)
    match.add_app(request.app)
    match.freeze()
    inner._match_info = match  # what aiohttp's own dispatch does before calling a handler
    return await match.handler(inner)


@routes.route("*", "/disco/{path:.*}")
async def node_data(request: web.Request) -> web.StreamResponse:
    if request.method != "GET":
        raise not_found()  # 2.5: the master serves data files for GET only
    return await serve_file(request, runtime(request).config.disco_data, request.match_info["path"])


# /ddfs/... is left to the DDFS routes (a separate part) mounted on the same app.
@static_routes.route("*", r"/{path:(?!ddfs/).*}")
async def static(request: web.Request) -> web.StreamResponse:
    """2.6: files of ``DISCO_WWW_ROOT``; ``/`` is ``index.html``."""
    if request.method not in ("GET", "HEAD"):
        raise not_found()
    root = runtime(request).config.www_root
    rel = request.match_info["path"]
    path = safe_path(root, rel) if rel else os.path.realpath(root)
    if path is None or not os.path.exists(path):
        raise not_found()
    if os.path.isdir(path):
        if rel and not rel.endswith("/"):
            raise web.HTTPMovedPermanently(request.path + "/")
        path = os.path.join(path, "index.html")
        if not os.path.isfile(path):
            raise not_found()
    return web.FileResponse(path)
