"""Serving node data over HTTP (master-api.md 2.5, 2.8, 2.9).

Owns: ``serve_file`` (one file under a data root: safe paths only, 404/403 rules,
``application/octet-stream`` with Range, Last-Modified and 304) which the master's
``/disco/<path>`` route uses too, and ``create_data_app``, the HTTP server of a node
that is not the master host: GET/HEAD ``/disco/<path>`` from DISCO_DATA and
``/ddfs/<path>`` from DDFS_DATA, other methods 501, ``/proxy/<node>/<method>`` stripped.
"""

from __future__ import annotations

import logging
import os
import stat

from aiohttp import hdrs, web
from multidict import CIMultiDict

from disco.auth import AuthPolicy, middleware
from disco.ddfs.gate import DOWNLOADS_BUSY, NODE_BUSY, TransferGate, TransferLimits
from disco.safenames import UnsafeName, resolve
from disco.servererrors import guard

logger = logging.getLogger(__name__)

NOT_FOUND = "Not found."
MAX_DOWNLOADS = 128  # 11.5: concurrent HTTP connections of a node


DOWNLOADS = web.AppKey("disco_downloads", TransferGate)


class ServedBytes:
    """Bytes of data files a server has sent, by area (``disco`` or ``ddfs``): metrics."""

    def __init__(self) -> None:
        self.by_area: dict[str, int] = {}

    def add(self, area: str, count: int) -> None:
        self.by_area[area] = self.by_area.get(area, 0) + count


SERVED = web.AppKey("disco_served_bytes", ServedBytes)


def download_limit(limit: int = MAX_DOWNLOADS) -> TransferGate:
    """At most ``limit`` files sent at once, no queue: one more gets 503 at once (2.5)."""
    return TransferGate(TransferLimits(active=limit, queue=0))


def safe_path(root: str, relpath: str) -> str | None:
    """The real path of ``root/relpath`` if it stays inside ``root``, else ``None``.

    ``disco.safenames.resolve``: refuses absolute paths, ``..`` components, NUL bytes,
    over-long components and symlinks that lead out of the root (2.5: unsafe paths are
    answered 404).
    """
    try:
        return resolve(root, relpath)
    except UnsafeName:
        return None


def text_response(status: int, text: str) -> web.Response:
    """A plain-text answer that closes the connection (1.2)."""
    response = web.Response(status=status, text=text, content_type="text/plain")
    response.force_close()  # 1.2: data responses close the connection
    return response


def _not_found() -> web.Response:
    return text_response(404, NOT_FOUND)


async def serve_file(request: web.Request, root: str, relpath: str) -> web.StreamResponse:
    """Serve ``<root>/<relpath>`` by the rules of 2.5.

    When the app holds a download gate (key ``DOWNLOADS``, see ``download_limit``) and
    it is full, the answer is ``503`` (clients retry with back-off).
    """
    gate = request.config_dict.get(DOWNLOADS)
    if gate is None:
        return await _serve_file(request, root, relpath)
    return await serve_gated(request, gate, root, relpath)


async def _serve_file(request: web.Request, root: str, relpath: str) -> web.StreamResponse:
    path = safe_path(root, relpath)
    if path is None:
        return _not_found()
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return _not_found()
    except OSError as exc:
        logger.warning("stat %s failed: %s", path, exc)
        return text_response(403, "Disco node is busy")
    if stat.S_ISDIR(st.st_mode):
        return text_response(403, "Forbidden")
    if not stat.S_ISREG(st.st_mode):
        return _not_found()
    response = _DataFileResponse(path, headers={hdrs.CONTENT_TYPE: "application/octet-stream"})
    response.force_close()  # 1.2: data responses close the connection
    return response


class _DataFileResponse(web.FileResponse):
    """A file served byte for byte.

    aiohttp would send a ``<file>.gz``/``.br`` sibling to clients accepting gzip; data
    files must be served as they are, so we prepare against a request without
    Accept-Encoding.  Preparing twice is a no-op (handlers may prepare it themselves).
    """

    async def prepare(self, request: web.BaseRequest):  # type: ignore[override]
        if self.prepared:
            return self._payload_writer
        headers = CIMultiDict(request.headers)
        headers.popall(hdrs.ACCEPT_ENCODING, None)
        if hdrs.RANGE in headers and _unsatisfiable(request, self._path):
            headers.popall(hdrs.RANGE)  # the whole file with 200, never 416 (ddfs.md 2.4.3)
        writer = await super().prepare(request.clone(headers=headers))
        served = request.config_dict.get(SERVED)
        if served is not None and request.method == hdrs.METH_GET and self.status < 300:
            area = "ddfs" if strip_proxy(request.path).startswith("/ddfs/") else "disco"
            served.add(area, self.content_length or 0)
        return writer


def _unsatisfiable(request: web.BaseRequest, path: object) -> bool:
    """Does the request's Range start at or past the end of the file (e.g. empty file),
    or is it one we do not serve (malformed, reversed, several ranges)?  Such a Range
    is ignored: the whole file with 200 instead of 416 (M 13.3)."""
    try:
        start = request.http_range.start
    except ValueError:
        return True
    try:
        size = os.stat(str(path)).st_size
    except OSError:
        return False
    return start is not None and (start >= size if start >= 0 else size == 0)


def strip_proxy(path: str) -> str:
    """Drop a leading ``/proxy/<node>/<method>`` (2.8); other paths are unchanged."""
    if path.startswith("/proxy/"):
        parts = path.split("/", 4)  # "", "proxy", node, method, rest
        return "/" + (parts[4] if len(parts) > 4 else "")
    return path


async def serve_gated(
    request: web.Request, gate: TransferGate, root: str, relpath: str
) -> web.StreamResponse:
    """``serve_file`` holding a download slot while the file is sent (ddfs.md 2.2)."""
    verdict = await gate.enter()
    if verdict == "full":
        return text_response(503, DOWNLOADS_BUSY)
    if verdict == "timeout":
        return text_response(403, NODE_BUSY)
    try:
        response = await _serve_file(request, root, relpath)
        await response.prepare(request)  # a file response sends its body here
    finally:
        gate.leave()
    return response


def create_data_app(
    disco_data: str,
    ddfs_data: str,
    ddfs_gate: TransferGate | None = None,
    max_downloads: int = MAX_DOWNLOADS,
    auth: AuthPolicy | None = None,
    served: ServedBytes | None = None,
) -> web.Application:
    """The data server of one node (2.9).

    ``/disco/`` downloads beyond ``max_downloads`` at once get 503 (2.5); ``/ddfs/``
    downloads pass ``ddfs_gate`` (a queue with a wait, ddfs.md 2.2) instead.  ``auth``:
    downloads need the cluster's token when it protects reads (``disco.auth``).  The
    bytes sent are added to ``served`` (the metrics).
    """
    roots = {"disco": disco_data, "ddfs": ddfs_data}

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method not in (hdrs.METH_GET, hdrs.METH_HEAD):
            return text_response(501, "Method not supported")
        path = strip_proxy(request.path)
        top, _, rest = path.partition("/")[2].partition("/")
        root = roots.get(top) if rest else None
        if root is None:
            return _not_found()
        if top == "ddfs" and ddfs_gate is not None:
            return await serve_gated(request, ddfs_gate, root, rest)
        return await serve_file(request, root, rest)

    app = guard(
        web.Application(middlewares=[middleware(auth)] if auth and auth.enabled else [])
    )
    app[DOWNLOADS] = download_limit(max_downloads)
    app[SERVED] = served if served is not None else ServedBytes()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
