"""Version, node data and proxy prefix (master-api.md 1.1, 2.1, 2.5).

``GET /disco/<path>`` serves ``<DISCO_DATA>/<path>`` through the node data server's
``serve_file`` (GET only on the master, 2.5).  ``/proxy/<node>/<method>/<rest>`` is
routed again as ``/<rest>`` (1.1).  Static UI files (2.6) are ``disco.web.pages``.
"""

from __future__ import annotations

from aiohttp import web

from disco.master.api.common import json_response, runtime
from disco.master.errors import not_found
from disco.node.dataserver import serve_file, strip_proxy

routes = web.RouteTableDef()


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
