"""Synchronous HTTP and local-file access (library.md 13, 15; Appendix A).

The 0.5 names: ``request``/``download``/``upload``, ``Connection`` (a read-only file over
ranged GETs), ``File`` (a local file with ``len()`` and ``.url``), ``open_url`` and the
status helpers.  The HTTP itself (one connection pool per process, redirects, timeouts,
retries) is ``disco.httpclient``; every function here takes ``retry``, a
``disco.httpclient.RetryPolicy`` (``None``: ``httpclient.DEFAULT_RETRY``).

Failures: with the default policy a 503 reply or a failed connection is retried up to 10
times with a growing random back-off (each retry is logged), except a refused connection
and an unknown host name, which raise ``CommError`` at once; any other non-2xx reply
raises ``CommError(body, url, status)`` at once; exhausted retries raise ``CommError``
with the last status (or ``None`` when no reply was ever received).  Inside
``failover(seconds)`` (a replica with others left to try) a request gives up once
``seconds`` have gone by without an answer, retries included.
"""

from __future__ import annotations

import base64
import io
import os
import re
import urllib.parse
from collections.abc import Iterator, Mapping
from typing import Any

from disco.error import CommError, DataError
from disco.httpclient import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from disco.httpclient import MAX_REDIRECTS as MAX_REDIRECTS
from disco.httpclient import NO_RETRY as NO_RETRY
from disco.httpclient import SEND_BLOCK as SEND_BLOCK
from disco.httpclient import Response as Response
from disco.httpclient import RetryPolicy as RetryPolicy
from disco.httpclient import _patience as _patience  # looked at by tests
from disco.httpclient import failover as failover
from disco.httpclient import request as _http_request

MB = 1024**2
CHUNK_SIZE = 10 * MB  # bytes per ranged GET of a Connection
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+|\*)(?:-(\d+))?/(\d+|\*)")


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


def raw_request(
    method: str,
    url: str,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    offset: Any = (),
    timeout: float | None = DEFAULT_TIMEOUT,
    tries: int | None = None,
    retry: RetryPolicy | None = None,
) -> Response:
    """One request with redirects and retries; any final status is returned.

    ``token`` (else one in the URL) becomes the DDFS ``Authorization`` header; ``offset``
    a ``Range``; ``tries`` overrides the attempts of ``retry``."""
    hdrs = dict(headers or {})
    if token is None:
        from disco.util import urltoken

        token = urltoken(url)
    hdrs.update(auth_header(token))
    hdrs.update(_range_header(offset))
    if tries is not None:
        from disco import httpclient

        retry = (retry or httpclient.DEFAULT_RETRY).replace(attempts=tries)
    return _http_request(method, url, data, hdrs, retry=retry, timeout=timeout)


def request(
    method: str,
    url: str,
    data: Any = None,
    headers: Mapping[str, str] | None = None,
    token: str | None = None,
    offset: Any = (),
    timeout: float | None = DEFAULT_TIMEOUT,
    retry: RetryPolicy | None = None,
) -> Response:
    """Like ``raw_request`` but a non-2xx reply raises ``CommError(body, url, status)``."""
    resp = raw_request(method, url, data, headers, token, offset, timeout, retry=retry)
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
    retry: RetryPolicy | None = None,
) -> bytes:
    """The body of a request (``offset=(start, end)``: an inclusive Range)."""
    return request(method, url, data, headers, token, offset, timeout, retry).body


def upload(urls: Any, source: Any, token: str | None = None, **kwargs: Any) -> list[bytes]:
    """PUT ``source`` (bytes, a file path or a binary file) to every URL; reply bodies.

    A file is streamed in ``SEND_BLOCK`` pieces, never read into memory whole."""
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
        retry: RetryPolicy | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.retry = retry
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
            "GET",
            self.url,
            headers=self.headers,
            token=self.token,
            offset=(self._next, end),
            retry=self.retry,
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
    url: str,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
) -> Connection:
    """A ``Connection``; ``disco://``/``dir://`` URLs go to ``http://host:<DISCO_PORT>/``
    with the cluster's auth header (``disco.auth``)."""
    if url.startswith(("disco://", "dir://")):
        from disco import auth
        from disco.util import urlresolve

        url = urlresolve(url)
        headers = {**auth.headers(), **(headers or {})}
    return Connection(url, token, headers=headers, retry=retry)


def open_url(
    url: str,
    token: str | None = None,
    headers: Mapping[str, str] | None = None,
    retry: RetryPolicy | None = None,
) -> File | Connection:
    """``file://`` URLs and bare paths -> ``File``; anything else -> ``Connection``."""
    if url.startswith("file://"):
        return open_local(url[len("file://") :])
    if "://" not in url:
        return open_local(url)
    return open_remote(url, token, headers, retry)


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
    return str(status) == "503"


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
