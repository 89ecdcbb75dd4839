"""The cluster's shared secret (``DISCO_AUTH_TOKEN``): who must show it and how it is checked.

Not in Disco 0.5 (see ``docs/security.md``).  When ``DISCO_AUTH_TOKEN`` is set on the
master, every request that changes something (submit, kill, clean, purge, settings, the
config table, black/whitelists, DDFS tag writes and deletes, blob uploads to the nodes'
``DDFS_PUT_PORT`` servers, GC start) must carry the token in the ``X-Disco-Auth-Token``
header; with ``DISCO_AUTH_READS`` set, reads (GET/HEAD, the JSON endpoints, node data
downloads) need it too.  Always open: ``GET /disco/version`` (the health check) and the
web UI's page shell, the HTML/CSS/JS files shipped in ``disco/web/static`` (they hold no
data; a browser navigation cannot carry a header, and the pages then send the token on
every data request they make).  A missing or wrong token gets ``401`` and the request
changes nothing.

A dedicated header, not ``Authorization``: that header already carries the DDFS tag
tokens of 0.5 (``Basic token:<t>``, ddfs.md 3.5), and a request may need both.

Client side, ``headers(settings)`` is what the library, the tools and the workers add to
every request they send to the cluster (the master, the nodes' data and upload servers);
requests to other hosts (``http://`` inputs, S3, HDFS) never get it.

This module does not import aiohttp at import time (task workers import it through
``disco.comm``); ``middleware`` builds the servers' aiohttp middleware.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

HEADER = "X-Disco-Auth-Token"
TOKEN_SETTING = "DISCO_AUTH_TOKEN"
READS_SETTING = "DISCO_AUTH_READS"
UNAUTHORIZED = "Unauthorized: missing or wrong %s header (DISCO_AUTH_TOKEN)." % HEADER

# Always open: the health check of ``disco start``, ``disco status`` and load balancers.
PUBLIC_PATHS = frozenset({"/disco/version"})
# The web UI's page shell (docs/web-ui.md): the files shipped in this directory.
SHELL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web", "static")
# GETs that change something.
WRITE_GETS = frozenset({"/ddfs/ctrl/gc_start"})
# POSTs that only read.
READ_POSTS = frozenset({"/disco/ctrl/get_results", "/ddfs/ctrl/hosted_tags"})

_TRUE = ("1", "true", "yes", "on")


def _setting(settings: Any, key: str) -> str:
    if settings is None:
        from disco.settings import DiscoSettings

        settings = DiscoSettings()
    try:
        value = settings[key]
    except KeyError:
        return ""
    return "" if value is None else str(value)


def client_token(settings: Any = None) -> str | None:
    """The token this process sends to the cluster (``DISCO_AUTH_TOKEN``), else ``None``."""
    return _setting(settings, TOKEN_SETTING) or None


def headers(settings: Any = None) -> dict[str, str]:
    """The header to add to a request to the cluster (``{}`` when no token is set)."""
    token = client_token(settings)
    return {HEADER: token} if token else {}


def _normal(path: str) -> str:
    return re.sub("/+", "/", path).rstrip("/") or "/"


@functools.cache
def shell_paths() -> frozenset[str]:
    """URL paths of the web UI's page shell: ``/`` and every file under ``SHELL_DIR``.

    Static code and styles only, no data: they are open even with ``DISCO_AUTH_READS``.
    """
    found = {"/"}
    for folder, _dirs, files in os.walk(SHELL_DIR):
        rel = os.path.relpath(folder, SHELL_DIR)
        for name in files:
            path = name if rel == "." else os.path.join(rel, name)
            found.add("/" + path.replace(os.sep, "/"))
    return frozenset(found)


def is_shell(method: str, path: str) -> bool:
    """Whether a request fetches a file of the web UI's page shell."""
    return method in ("GET", "HEAD") and _normal(path) in shell_paths()


def is_read(method: str, path: str) -> bool:
    """Whether a request (path without any ``/proxy/<node>/<method>`` prefix) only reads."""
    path = _normal(path)
    if method in ("GET", "HEAD"):
        return path not in WRITE_GETS
    return method == "POST" and path in READ_POSTS


@dataclass(frozen=True)
class AuthPolicy:
    """What a server of the cluster demands: ``token`` ("" = nothing), ``reads`` too?"""

    token: str = field(default="", repr=False)
    reads: bool = False

    @classmethod
    def from_settings(cls, settings: Any) -> AuthPolicy:
        reads = _setting(settings, READS_SETTING).strip().lower() in _TRUE
        return cls(_setting(settings, TOKEN_SETTING), reads)

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    def needs_token(self, method: str, path: str) -> bool:
        """Whether a request must carry the token under this policy."""
        if not self.token or (method == "GET" and _normal(path) in PUBLIC_PATHS):
            return False
        if is_shell(method, path):
            return False
        return self.reads or not is_read(method, path)

    def shell_only(self, method: str, path: str, request_headers: Mapping[str, str]) -> bool:
        """Whether a request passes only as the page shell: reads are protected and it has
        no valid token.  Such a request gets the shipped file, never a ``DISCO_WWW_ROOT``
        file of the same name (a site's own pages may hold data)."""
        return (
            self.enabled
            and self.reads
            and is_shell(method, path)
            and not self.accepts(request_headers)
        )

    def accepts(self, request_headers: Mapping[str, str]) -> bool:
        """Whether the request's header holds the token (compared in constant time)."""
        presented = request_headers.get(HEADER)
        if presented is None:
            return False
        # imported here: ``hmac`` maps OpenSSL's libcrypto, and this module is in the
        # memory every task is forked from (docs/decisions.md, "A lean fork base")
        import hmac

        return hmac.compare_digest(presented.encode("utf-8"), self.token.encode("utf-8"))

    def worker_env(self) -> dict[str, str]:
        """What task workers get in their environment so their own requests pass."""
        return {TOKEN_SETTING: self.token} if self.token else {}


def is_auth_failure(status: int | None, body: str | bytes) -> bool:
    """Whether a reply is this module's 401 (not a DDFS tag-token 401)."""
    if status != 401:
        return False
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    return HEADER in text


Handler = Callable[[Any], Awaitable[Any]]


def middleware(policy: AuthPolicy) -> Any:
    """The aiohttp middleware that enforces ``policy`` (the master and every node server).

    Runs before the request body is read: a refused request changes nothing.
    """
    from aiohttp import web

    from disco.node.dataserver import strip_proxy

    @web.middleware
    async def check_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if policy.needs_token(request.method, strip_proxy(request.path)):
            if not policy.accepts(request.headers):
                response = web.Response(status=401, text=UNAUTHORIZED, content_type="text/plain")
                response.force_close()  # the unread body is not drained
                return response
        return await handler(request)

    return check_auth
