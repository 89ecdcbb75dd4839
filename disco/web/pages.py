"""The static files of the web UI (master-api.md 2.6): ``/`` and everything not routed.

A path is looked up in ``DISCO_WWW_ROOT`` first (a site's own pages, as in 0.5), then in
the pages shipped in this package (``disco/web/static``).  ``/`` is ``index.html``; a
directory without a trailing slash is redirected to it; ``..`` is refused with 404.
"""

from __future__ import annotations

import os

from aiohttp import web

from disco.master.api.common import runtime
from disco.master.errors import not_found
from disco.node.dataserver import safe_path

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

routes = web.RouteTableDef()


def find(root: str, rel: str) -> tuple[str, bool] | None:
    """(real path, is a directory) of ``rel`` under ``root``, or ``None``."""
    path = safe_path(root, rel) if rel else os.path.realpath(root)
    if path is None or not os.path.exists(path):
        return None
    return path, os.path.isdir(path)


# /ddfs/... is left to the DDFS routes mounted on the same app.
@routes.route("*", r"/{path:(?!ddfs/).*}")
async def static(request: web.Request) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD"):
        raise not_found()
    rel = request.match_info["path"]
    for root in (runtime(request).config.www_root, STATIC):
        found = find(root, rel)
        if found is None:
            continue
        path, is_dir = found
        if is_dir:
            if rel and not rel.endswith("/"):
                raise web.HTTPMovedPermanently(request.path + "/")
            path = os.path.join(path, "index.html")
            if not os.path.isfile(path):
                continue
        response = web.FileResponse(path)
        if root == STATIC:
            response.headers["Cache-Control"] = "no-cache"  # a new version shows at once
        return response
    raise not_found()
