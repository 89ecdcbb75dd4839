"""Synchronous HTTP and local-file access (library.md 13, 15; Appendix A).

Owns ``request``/``download``/``upload`` (stdlib ``http.client``), ``Connection`` (a
read-only file over ranged GETs) and ``File`` (a local file with ``len()`` and ``.url``).

Failures: a 503 reply or a failed connection is retried up to ``MAX_TRIES`` times with a
growing random back-off (each retry is logged), except a refused connection and an
unknown host name, which raise ``CommError`` at once; any other non-2xx reply raises
``CommError(body, url, status)`` at once; exhausted retries raise ``CommError`` with the
last status (or ``None`` when no reply was ever received).  Inside ``failover(seconds)``
(a replica with others left to try) a request gives up once ``seconds`` have gone by
without an answer, retries included.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import http.client
import io
import logging
import os
import random
import re
import socket
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from collections.abc import Iterator as _Iterator
from dataclasses import dataclass
from typing import Any

from disco.auth import HEADER as AUTH_HEADER
from disco.error import CommError, DataError

logger = logging.getLogger(__name__)

MB = 1024**2
CHUNK_SIZE = 10 * MB  # bytes per ranged GET of a Connection
SEND_BLOCK = 1 << 20  # file bodies are sent in 1 MiB pieces (http.client's default: 8 KiB)
MAX_TRIES = 10  # attempts for 503 replies and failed connections
RETRY_BASE_DELAY = 0.1  # seconds; doubled each retry, then jittered (x0.5..1.0)
RETRY_MAX_DELAY = 5.0
MAX_REDIRECTS = 5
DEFAULT_TIMEOUT = 600.0  # socket timeout of one request, seconds
_REDIRECTS = (301, 302, 303, 307, 308)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+|\*)(?:-(\d+))?/(\d+|\*)")
# Seconds a request may wait for an answer (connect, headers, retries) in ``failover``.
_patience: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "disco_comm_patience", default=None
)


@contextlib.contextmanager
def failover(seconds: float) -> _Iterator[None]:
    """Requests made inside give up after ``seconds`` without an answer (retries and
    503 waits included): the caller has another replica to try (issue 11.6)."""
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)


@dataclass
class Response:
    """A complete HTTP reply (after redirects)."""

    status: int
    headers: Any  # http.client.HTTPMessage
    body: bytes
    url: str


def auth_header(token: str | None) -> dict[str, str]:
    """``Authorization: Basic base64("token:<token>")`` (library.md 15)."""
    if token is None:
        return {}
    creds = base64.b64encode(("token:%s" % token).encode("utf-8")).decode("ascii")
    return {"Authorization": "Basic %s" % creds}


def _range_header(offset: Any) -> dict[str, str]:
    if not offset:
        return {}
    if isinstance(offset, int):
        return {"Range": "bytes=%d-" % offset}
    start, end = offset
    return {"Range": "bytes=%d-%s" % (start, "" if end is None else int(end))}


def _once(
    method: str,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    timeout: float | None,
    answer_within: float | None = None,
) -> Response:
    """One request; ``answer_within``: seconds for the connection and the reply's
    headers (the body then gets ``timeout``)."""
    parts = urllib.parse.urlsplit(url)
    first = timeout
    if answer_within is not None:
        first = answer_within if timeout is None else min(timeout, answer_within)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=first, blocksize=SEND_BLOCK
        )
    elif parts.scheme == "http":
        conn = http.client.HTTPConnection(
            parts.hostname or "", parts.port, timeout=first, blocksize=SEND_BLOCK
        )
    else:
        raise CommError("Unsupported URL scheme %r" % parts.scheme, url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        conn.request(method, target, body=body, headers=dict(headers))
        sock = conn.sock
        resp = conn.getresponse()
        if first != timeout and sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(timeout)
        return Response(resp.status, resp.headers, resp.read(), url)
    finally:
        conn.close()


def _rewind(body: Any) -> Any:
    """Return a callable giving a fresh body for each try (files are seeked back)."""
    if hasattr(body, "read") and hasattr(body, "seek"):
        start = body.tell()

        def again() -> Any:
            body.seek(start)
            return body

        return again
    return lambda: body


def _body_length(body: Any) -> int | None:
    """Bytes left in a seekable file body (so it is not sent chunked), else ``None``."""
    if hasattr(body, "read") and hasattr(body, "seek"):
        try:
            here = body.tell()
            end = body.seek(0, os.SEEK_END)
            body.seek(here)
            return end - here
        except (OSError, ValueError):
            return None
    return None


def _backoff(attempt: int) -> float:
    return min(RETRY_MAX_DELAY, RETRY_BASE_DELAY * 2**attempt) * random.uniform(0.5, 1.0)


def raw_request(
    method: str,
    url: str,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    offset: Any = (),
    timeout: float | None = DEFAULT_TIMEOUT,
    tries: int | None = None,
) -> Response:
    """One request with redirects and retries; any final status is returned."""
    tries = MAX_TRIES if tries is None else tries
    if isinstance(data, str):
        data = data.encode("utf-8")
    hdrs = dict(headers or {})
    if token is None:
        from disco.util import urltoken

        token = urltoken(url)
    hdrs.update(auth_header(token))
    hdrs.update(_range_header(offset))
    length = _body_length(data)
    if length is not None:
        hdrs.setdefault("Content-Length", str(length))
    body_for_try = _rewind(data)
    attempt = 0
    redirects = 0
    patience = _patience.get()
    give_up = None if patience is None else time.monotonic() + patience
    while True:
        left = None if give_up is None else max(0.05, give_up - time.monotonic())
        try:
            resp = _once(method, url, body_for_try(), hdrs, timeout, left)
        except socket.gaierror as e:  # an unknown host name: retrying will not help
            raise CommError("Cannot resolve the host of %s: %s" % (url, e), url)
        except ConnectionRefusedError:  # nothing listens there: retrying will not help
            raise CommError("Connection refused", url) from None
        except http.client.InvalidURL as e:  # the same URL stays invalid
            error = CommError("Invalid URL: %s" % e, url)
            error.permanent = True  # type: ignore[attr-defined]  # disco.retryable
            raise error from None
        except (OSError, http.client.HTTPException) as e:
            delay = _backoff(attempt)
            if attempt + 1 >= tries or _past(give_up, delay):
                raise CommError("%s (gave up after %d tries)" % (e, attempt + 1), url)
            logger.warning(
                "%s %s failed (%s); retry %d in %.2fs", method, url, e, attempt + 1, delay
            )
        else:
            if resp.status in _REDIRECTS and resp.headers.get("Location"):
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise CommError("Too many redirects", url, resp.status)
                target = urllib.parse.urljoin(url, resp.headers["Location"])
                if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
                    hdrs.pop(AUTH_HEADER, None)  # the cluster's token stays in the cluster
                url = target
                if resp.status == 303:
                    method, body_for_try = "GET", (lambda: None)
                continue
            delay = _backoff(attempt)
            if resp.status != 503 or attempt + 1 >= tries or _past(give_up, delay):
                return resp
            logger.warning(
                "%s %s: 503 unavailable; retry %d in %.2fs", method, url, attempt + 1, delay
            )
        attempt += 1
        time.sleep(delay)


def _past(give_up: float | None, delay: float) -> bool:
    """Would waiting ``delay`` more seconds go past ``give_up`` (``failover``)?"""
    return give_up is not None and time.monotonic() + delay > give_up


def request(
    method: str,
    url: str,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    offset: Any = (),
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Response:
    """Like ``raw_request`` but a non-2xx reply raises ``CommError(body, url, status)``."""
    resp = raw_request(method, url, data, headers, token, offset, timeout)
    if not 200 <= resp.status < 300:
        raise CommError(resp.body.decode("utf-8", "replace"), url, resp.status)
    return resp


def download(
    url: str,
    method: str = "GET",
    data: Any = None,
    offset: Any = (),
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> bytes:
    """The body of a request (``offset=(start, end)``: an inclusive Range)."""
    return request(method, url, data, headers, token, offset, timeout).body


def upload(urls: Any, source: Any, token: str | None = None, **kwargs: Any) -> list[bytes]:
    """PUT ``source`` (bytes, a file path or a binary file) to every URL; reply bodies."""
    if isinstance(urls, str):
        urls = [urls]
    replies = []
    for url in urls:
        if isinstance(source, str):
            with open(source, "rb") as f:
                replies.append(request("PUT", url, f, token=token, **kwargs).body)
        else:
            replies.append(request("PUT", url, source, token=token, **kwargs).body)
    return replies


class File(io.BufferedReader):
    """A local binary file with ``len()`` and ``url`` (``file://<path>``)."""

    def __init__(self, path: str) -> None:
        super().__init__(io.FileIO(path, "rb"))
        self.path = path
        self.url = "file://%s" % os.path.abspath(path)

    def __len__(self) -> int:
        return os.fstat(self.fileno()).st_size


class Connection:
    """A read-only binary stream over HTTP, fetched in ranged GETs of ``CHUNK_SIZE``.

    ``len()`` is the resource size, ``url`` the URL after redirects; iteration yields
    byte lines (newline kept).
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.headers = dict(headers or {})
        self.chunk_size = chunk_size
        self.size: int | None = None
        self._next = 0  # offset of the next ranged GET
        self._buf = b""
        self._pos = 0
        self._eof = False
        self.closed = False
        self._fetch()

    def _fetch(self) -> None:
        if self._eof:
            return
        end = self._next + self.chunk_size - 1
        resp = raw_request(
            "GET", self.url, headers=self.headers, token=self.token, offset=(self._next, end)
        )
        self.url = resp.url
        if resp.status == 206:
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if m and m.group(3) != "*":
                self.size = int(m.group(3))
            data = resp.body
        elif resp.status == 200:  # the server ignored Range: the whole body
            data = resp.body[self._next :] if self._next else resp.body
            self.size = len(resp.body)
            self._eof = True
        elif resp.status == 416:  # nothing at this offset (e.g. an empty file)
            m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
            if self.size is None:
                self.size = int(m.group(3)) if m and m.group(3) != "*" else self._next
            data = b""
            self._eof = True
        else:
            raise CommError(resp.body.decode("utf-8", "replace"), self.url, resp.status)
        self._next += len(data)
        if not data or (self.size is not None and self._next >= self.size):
            self._eof = True
        self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def __len__(self) -> int:
        return self.size or 0

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._next - (len(self._buf) - self._pos)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            while not self._eof:
                self._fetch()
            data, self._buf, self._pos = self._buf[self._pos :], b"", 0
            return data
        while len(self._buf) - self._pos < n and not self._eof:
            self._fetch()
        data = self._buf[self._pos : self._pos + n]
        self._pos += len(data)
        return data

    def readline(self, limit: int = -1) -> bytes:
        while True:
            idx = self._buf.find(b"\n", self._pos)
            if idx >= 0 or self._eof:
                break
            self._fetch()
        stop = len(self._buf) if idx < 0 else idx + 1
        if limit is not None and limit >= 0:
            stop = min(stop, self._pos + limit)
        data = self._buf[self._pos : stop]
        self._pos = stop
        return data

    def __iter__(self) -> Iterator[bytes]:
        while True:
            line = self.readline()
            if not line:
                return
            yield line

    def close(self) -> None:
        self.closed = True
        self._buf = b""
        self._pos = 0

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_local(path: str) -> File:
    """Open a local file; a missing or unreadable file is a ``DataError``."""
    try:
        return File(path)
    except OSError as e:
        raise DataError("Could not open %s: %s" % (path, e.strerror or e), path)


def open_remote(
    url: str, token: str | None = None, headers: Mapping[str, str] | None = None
) -> Connection:
    """A ``Connection``; ``disco://``/``dir://`` URLs go to ``http://host:<DISCO_PORT>/``
    with the cluster's auth header (``disco.auth``)."""
    if url.startswith(("disco://", "dir://")):
        from disco import auth
        from disco.util import urlresolve

        url = urlresolve(url)
        headers = {**auth.headers(), **(headers or {})}
    return Connection(url, token, headers=headers)


def open_url(
    url: str, token: str | None = None, headers: Mapping[str, str] | None = None
) -> File | Connection:
    """``file://`` URLs and bare paths -> ``File``; anything else -> ``Connection``."""
    if url.startswith("file://"):
        return open_local(url[len("file://") :])
    if "://" not in url:
        return open_local(url)
    return open_remote(url, token, headers)


# -- 0.5's helper names (library.md 15), kept for programs that import them ----------------
BUFFER_SIZE = MB  # read buffer of a local File in 0.5


def issuccessful(status: Any) -> bool:
    """Is ``status`` (an HTTP status, int or text) a 2xx success?"""
    return str(status).startswith("2")


def isredirection(status: Any) -> bool:
    """Is ``status`` a 3xx redirection?"""
    return str(status).startswith("3")


def isunavailable(status: Any) -> bool:
    """Is ``status`` 503 Service Unavailable (the reply that is retried)?"""
    return str(status) == str(http.client.SERVICE_UNAVAILABLE)


def range_header(offset: Any) -> dict[str, str]:
    """``{'Range': 'bytes=<start>-<end>'}`` for ``offset``: a start, or ``(start,)``, or
    ``(start, end)`` (inclusive, ``None``/``''`` for open); ``{}`` when ``offset`` is falsy."""
    if not offset:
        return {}
    if isinstance(offset, (int, str)):
        offset = (offset,)
    parts = [("" if x is None else str(x)) for x in offset] + ["", ""]
    return {"Range": "bytes=%s-%s" % (parts[0], parts[1])}


def resolveuri(baseuri: str, uri: str) -> str:
    """Where a ``Location`` reply header ``uri`` points from ``baseuri``: an absolute path
    keeps the base's scheme and host; anything else is appended to the base."""
    if "://" in uri:
        return uri
    if uri.startswith("/"):
        parts = urllib.parse.urlsplit(baseuri)
        return "%s://%s%s" % (parts.scheme, parts.netloc, uri)
    return "%s/%s" % (baseuri.rstrip("/"), uri)


class FileSource:
    """An upload body: the bytes of an open file (read once, at construction) or the
    file at a path; ``len()`` is its size and ``read`` reads it."""

    def __init__(self, source: Any) -> None:
        self.isopen = hasattr(source, "read")
        if self.isopen:
            data = source.read()
            self.source: Any = data.encode("utf-8") if isinstance(data, str) else data
        else:
            self.source = source

    def __len__(self) -> int:
        if self.isopen:
            return len(self.source)
        return os.stat(self.source).st_size

    @property
    def read(self) -> Any:
        """A ``read(size=-1)`` function over the whole body, from its start."""
        if self.isopen:
            return io.BytesIO(self.source).read
        with open(self.source, "rb") as f:
            return io.BytesIO(f.read()).read
