"""The one synchronous HTTP client of the library, the tools and the workers.

Everything that is not the master's or a node's own aiohttp code sends its HTTP through
here: ``disco.comm`` (``request``/``download``/``upload``/``Connection``), the ``Disco``
client, the DDFS client, result reading and the health checks of ``disco start`` and the
embedded master.  It owns:

- **one connection pool per process** (:class:`HostPool` per host, over ``http.client``
  connections): keep-alive connections are reused across requests to the same host, and
  a pooled connection the server has closed meanwhile is seen before it is used again.
  The pool remembers the pid that made it; a forked child (a task worker forked from
  the zygote, a ``multiprocessing`` child) never touches its parent's sockets and makes
  its own pool.
- **one retry policy object**, :class:`RetryPolicy`, passed in by the caller (``None``:
  :data:`DEFAULT_RETRY`): how many tries, the growing random back-off, which reply
  statuses and whether failed connections are retried.  A refused connection, an unknown
  host and an invalid URL are never retried (retrying cannot help).
- **redirects** (301/302/303/307/308, at most ``MAX_REDIRECTS``), followed here rather than
  by ``http.client``, so that the cluster's auth header (``disco.auth``, ``X-Disco-Auth-Token``)
  is dropped when a redirect leaves the host it was meant for.
- **timeouts**: ``timeout`` seconds of socket inactivity per request; inside
  :func:`failover` a request gives up once the patience is spent without an answer.
- **streaming**: a file body is sent in ``SEND_BLOCK`` pieces with its ``Content-Length``
  (never read whole); :func:`stream` hands the reply body out piece by piece.

``http.client`` is imported on the first request, not at import time: ``import disco.core``
stays cheap for scripts that never reach the network layer before they need it (in a
process with an embedded master aiohttp has imported it already).  docs/decisions.md,
"One HTTP client layer".
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import threading
import time
import urllib.parse
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from disco.auth import HEADER as AUTH_HEADER
from disco.error import CommError

logger = logging.getLogger("disco.comm")

SEND_BLOCK = 1 << 20  # file bodies are sent in 1 MiB pieces
DEFAULT_TIMEOUT = 600.0  # seconds of socket inactivity allowed in one request
MAX_REDIRECTS = 5
POOL_SIZE = 16  # kept-alive connections per host (threads pushing to one node, ...)
MAX_HOSTS = 64  # hosts whose connections are kept
REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class RetryPolicy:
    """When and how often a request is tried again.

    :param attempts: tries in all (``1``: never retried).
    :param base_delay: seconds before the first retry; doubled at each retry, at most
        ``max_delay``, then scaled by a random factor in ``[1 - jitter, 1]``.
    :param statuses: reply statuses that are retried (503 Service Unavailable: the server
        is busy, e.g. a DDFS node over its upload limit).
    :param connection_errors: retry a connection that failed or dropped, and a timeout.
        A refused connection, an unknown host and an invalid URL are never retried.
    """

    attempts: int = 10
    base_delay: float = 0.1
    max_delay: float = 5.0
    jitter: float = 0.5
    statuses: frozenset[int] = frozenset({503})
    connection_errors: bool = True

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry + 1`` (``retry`` counts from 0)."""
        import random  # not imported with the module: a lean fork base (disco.util)

        grown = min(self.max_delay, self.base_delay * 2**retry)
        return grown * random.uniform(1.0 - self.jitter, 1.0)

    def replace(self, **changes: Any) -> RetryPolicy:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(attempts=1)

# Seconds a request may wait for an answer (connect, headers, retries) in ``failover``.
_patience: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "disco_comm_patience", default=None
)


@contextlib.contextmanager
def failover(seconds: float) -> Iterator[None]:
    """Requests made inside give up after ``seconds`` without an answer (retries and
    503 waits included): the caller has another replica to try (issue 11.6)."""
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)


# -- the pool of this process ----------------------------------------------------------------
class HostPool:
    """Idle kept-alive connections to one host (``scheme``, ``host``, ``port``).

    A connection is taken out for one request and its whole reply, and put back only when
    the reply was read to its end and the server keeps the connection open; at most
    ``POOL_SIZE`` wait here (a busier moment's extra connections are closed when done).
    Before an idle connection is used again it is checked: one the server has closed (or
    written to) meanwhile is closed here and a new one is opened instead.
    """

    def __init__(self, scheme: str, host: str, port: int | None) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port
        self.num_connections = 0  # opened so far
        self.closed = False
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        # idle connections are closed when the pool is dropped, or at the latest at exit
        weakref.finalize(self, _close_all, self._idle)

    def get(self, timeout: float | None) -> Any:
        """A connection (``http.client.HTTPConnection``), idle or new (not yet connected)."""
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not _dropped(conn.sock):
                    conn.timeout = timeout
                    conn.sock.settimeout(timeout)
                    return conn
                conn.close()
            self.num_connections += 1
        import http.client

        if self.scheme == "https":
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=_tls(), blocksize=SEND_BLOCK
            )
        return http.client.HTTPConnection(
            self.host, self.port, timeout=timeout, blocksize=SEND_BLOCK
        )

    def put(self, conn: Any) -> None:
        """Keep ``conn`` (connected, its last reply read to the end) for the next request."""
        with self._lock:
            if not self.closed and conn.sock is not None and len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the idle connections; connections in use are closed when given back."""
        with self._lock:
            self.closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _close_all(connections: list[Any]) -> None:
    while connections:
        connections.pop().close()


def _dropped(sock: Any) -> bool:
    """Has the other end closed an idle connection (or sent something unasked)?"""
    if sock is None:
        return True
    import select

    try:
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):  # closed, or beyond select's descriptor limit
        return True


_tls_context: Any = None


def _tls() -> Any:
    """The default TLS context of this process's ``https`` connections (the system's CA
    certificates, host names checked), made on first use."""
    global _tls_context
    if _tls_context is None:
        import ssl

        with _pool_lock:
            if _tls_context is None:
                _tls_context = ssl.create_default_context()
    return _tls_context


class _Pools(dict):
    """This process's host pools: ``(scheme, host, port)`` -> :class:`HostPool`."""

    def __init__(self) -> None:
        super().__init__()
        self.pid = os.getpid()

    def connection_from_url(self, url: str) -> HostPool:
        """The pool of the host of ``url`` (made if there is none yet)."""
        parts = urllib.parse.urlsplit(url)
        return _host_pool(parts.scheme, parts.hostname or "", parts.port)

    def clear(self) -> None:
        """Forget every host pool, closing their idle connections."""
        for hosts in list(self.values()):
            hosts.close()
        super().clear()


_pool: _Pools | None = None
_pool_lock = threading.RLock()


def pool() -> _Pools:
    """This process's connection pools (made on first use, again after a fork)."""
    global _pool
    found = _pool
    if found is not None and found.pid == os.getpid():
        return found
    with _pool_lock:
        if _pool is None or _pool.pid != os.getpid():
            # The parent's pools are dropped, never closed from here: their sockets are
            # the parent's connections.
            _pool = _Pools()
        return _pool


def _host_pool(scheme: str, host: str, port: int | None) -> HostPool:
    """The connection pool of one host (a closed one is replaced)."""
    pools = pool()
    key = (scheme, host, port)
    found = pools.get(key)
    if found is None or found.closed:
        with _pool_lock:
            found = pools.get(key)
            if found is None or found.closed:
                if len(pools) >= MAX_HOSTS:
                    pools.clear()
                found = pools[key] = HostPool(scheme, host, port)
    return found


def _forget_pool() -> None:
    global _pool
    _pool = None


def close_pool() -> None:
    """Close this process's kept-alive connections (the next request opens new ones)."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool.pid == os.getpid():
            _pool.clear()
        _pool = None


if hasattr(os, "register_at_fork"):
    # the pid check in ``pool`` covers a child forked while the lock was held, too
    os.register_at_fork(after_in_child=_forget_pool)


class _Reply:
    """A reply whose body is still to be read, on a connection taken from ``hosts``."""

    def __init__(self, raw: Any, conn: Any, hosts: HostPool) -> None:
        self._raw = raw
        self._conn = conn
        self._hosts = hosts
        self._broken = False
        self.status: int = raw.status
        self.headers: Any = raw.headers  # http.client.HTTPMessage: case-insensitive
        self.connection = conn

    def read(self, n: int | None = -1) -> bytes:
        """Up to ``n`` bytes of the body (all that is left when ``n`` is negative);
        ``http.client.IncompleteRead`` when the connection ends before the body does."""
        if n is None or n < 0:
            return self._raw.read()
        data = self._raw.read(n)
        if not data and n and self._raw.length:
            # http.client returns b"" when a body is cut short (its length is still > 0)
            self._broken = True
            import http.client

            raise http.client.IncompleteRead(b"", self._raw.length)
        return data

    def release_conn(self) -> None:
        """Put the connection back in its pool if the body was read to its end and the
        server keeps it; otherwise close it (an unread body cannot carry another reply)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if not self._broken and self._raw.isclosed() and not self._raw.will_close:
            self._hosts.put(conn)
        else:
            self._raw.close()
            conn.close()

    def close(self) -> None:
        """Drop the connection (its body is not read any further)."""
        self._broken = True
        self.release_conn()


# -- replies ---------------------------------------------------------------------------------
@dataclass
class Response:
    """A complete HTTP reply (after redirects)."""

    status: int
    headers: Any  # case-insensitive mapping of the reply headers
    body: bytes
    url: str


class StreamResponse:
    """A reply whose body is read piece by piece (:func:`stream`); close it when done."""

    def __init__(self, raw: Any, url: str, timeout: float | None) -> None:
        self._raw = raw
        self.status: int = raw.status
        self.headers: Any = raw.headers
        self.url = url
        self._timeout = timeout

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes of the body (all that is left when ``n < 0``)."""
        try:
            return self._raw.read(n)
        except Exception as e:  # a connection that dropped in the middle of the body
            self._raw.close()
            if _is_transport_error(e):
                raise CommError("%s (reading the reply)" % _describe(e), self.url, self.status)
            raise

    def iter_bytes(self, size: int = SEND_BLOCK) -> Iterator[bytes]:
        """The body in pieces of at most ``size`` bytes."""
        while data := self.read(size):
            yield data

    def close(self) -> None:
        """Give the connection back to the pool (or drop it if the body was not read)."""
        raw, self._raw = self._raw, None
        if raw is None:
            return
        raw.release_conn()  # closed instead when the body was not read to its end

    def __enter__(self) -> StreamResponse:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- requests --------------------------------------------------------------------------------
def request(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Response:
    """Send a request (redirects followed, retried by ``retry``); any final status is
    returned with its whole body."""
    reply = _exchange(method, url, body, headers, retry, timeout, stream=False)
    assert isinstance(reply, Response)
    return reply


def stream(
    method: str,
    url: str,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    retry: RetryPolicy | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> StreamResponse:
    """Like :func:`request`, but the final reply's body is left unread: read it from the
    returned :class:`StreamResponse` (a context manager) without holding it in memory."""
    reply = _exchange(method, url, body, headers, retry, timeout, stream=True)
    assert isinstance(reply, StreamResponse)
    return reply


def _exchange(
    method: str,
    url: str,
    body: Any,
    headers: Mapping[str, str] | None,
    retry: RetryPolicy | None,
    timeout: float | None,
    stream: bool,
) -> Response | StreamResponse:
    policy = DEFAULT_RETRY if retry is None else retry
    if isinstance(body, str):
        body = body.encode("utf-8")
    hdrs = dict(headers or {})
    length = _body_length(body)
    if length is not None:
        hdrs.setdefault("Content-Length", str(length))
    body_for_try = _rewind(body)
    attempt = 0
    redirects = 0
    patience = _patience.get()
    give_up = None if patience is None else time.monotonic() + patience
    while True:
        left = None if give_up is None else max(0.05, give_up - time.monotonic())
        try:
            raw = _send(method, url, body_for_try(), hdrs, timeout, left)
        except _Permanent as e:
            raise e.error from None
        except Exception as e:
            if not _is_transport_error(e):
                raise
            delay = _delay_or_give_up(policy, attempt, give_up, e, method, url)
        else:
            status = raw.status
            location = raw.headers.get("Location")
            if status in REDIRECTS and location:
                _finish(raw, url)
                redirects += 1
                if redirects > MAX_REDIRECTS:
                    raise CommError("Too many redirects", url, status)
                target = urllib.parse.urljoin(url, location)
                if urllib.parse.urlsplit(target).netloc != urllib.parse.urlsplit(url).netloc:
                    hdrs.pop(AUTH_HEADER, None)  # the cluster's token stays in the cluster
                url = target
                if status == 303:
                    method, body_for_try = "GET", (lambda: None)
                    hdrs.pop("Content-Length", None)
                continue
            delay = policy.delay(attempt)
            if (
                status not in policy.statuses
                or attempt + 1 >= policy.attempts
                or _past(give_up, delay)
            ):
                if stream:
                    return StreamResponse(raw, url, timeout)
                try:
                    data = raw.read()
                except Exception as e:
                    raw.close()
                    if not _is_transport_error(e):
                        raise
                    # A reply cut off mid-body is retried like a failed connection (the
                    # whole request again: a ranged GET asks for the same range).
                    delay = _delay_or_give_up(
                        policy, attempt, give_up, e, method, url, status, "reading the reply; "
                    )
                    attempt += 1
                    time.sleep(delay)
                    continue
                raw.release_conn()
                return Response(status, raw.headers, data, url)
            _finish(raw, url)
            logger.warning(
                "%s %s: %d %s; retry %d in %.2fs",
                method,
                url,
                status,
                "unavailable" if status == 503 else "reply",
                attempt + 1,
                delay,
            )
        attempt += 1
        time.sleep(delay)


class _Permanent(Exception):
    """A failure no retry can cure; carries the ``CommError`` to raise."""

    def __init__(self, error: CommError) -> None:
        super().__init__(error.msg)
        self.error = error


def _send(
    method: str,
    url: str,
    body: Any,
    headers: Mapping[str, str],
    timeout: float | None,
    answer_within: float | None,
) -> _Reply:
    """One try; returns the reply with its body unread.

    ``answer_within``: seconds for the connection and the reply's headers (the body then
    gets ``timeout``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _Permanent(CommError("Unsupported URL scheme %r" % parts.scheme, url))
    if not parts.hostname:
        error = CommError("Invalid URL: No host specified.", url)
        error.permanent = True  # type: ignore[attr-defined]  # disco.retryable
        raise _Permanent(error)
    first = timeout
    if answer_within is not None:
        first = answer_within if timeout is None else min(timeout, answer_within)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    hosts = _host_pool(parts.scheme, parts.hostname, parts.port)
    conn = hosts.get(first)
    import http.client
    import socket

    try:
        if conn.sock is None:
            try:
                conn.connect()
            except socket.gaierror as e:
                error = CommError("Cannot resolve the host of %s: %s" % (url, e), url)
                raise _Permanent(error) from None
            except ConnectionRefusedError:
                raise _Permanent(CommError("Connection refused", url)) from None
        conn.request(method, target, body=body, headers=dict(headers))
        raw = conn.getresponse()
    except http.client.InvalidURL as e:  # the same URL stays invalid
        conn.close()
        error = CommError("Invalid URL: %s" % e, url)
        error.permanent = True  # type: ignore[attr-defined]
        raise _Permanent(error) from None
    except BaseException:
        conn.close()
        raise
    if first != timeout and conn.sock is not None:
        with contextlib.suppress(OSError):
            conn.sock.settimeout(timeout)
    return _Reply(raw, conn, hosts)


def _delay_or_give_up(
    policy: RetryPolicy,
    attempt: int,
    give_up: float | None,
    error: BaseException,
    method: str,
    url: str,
    status: int | None = None,
    during: str = "",
) -> float:
    """After a transport error (no reply, or a reply cut off ``during`` its body): the
    delay before the next try, or ``CommError`` when ``policy`` (or the patience left)
    says to stop."""
    delay = policy.delay(attempt)
    if not policy.connection_errors or attempt + 1 >= policy.attempts or _past(give_up, delay):
        raise CommError(
            "%s (%sgave up after %d tries)" % (_describe(error), during, attempt + 1), url, status
        ) from None
    logger.warning(
        "%s %s failed (%s%s); retry %d in %.2fs",
        method,
        url,
        during,
        _describe(error),
        attempt + 1,
        delay,
    )
    return delay


def _finish(raw: _Reply, url: str) -> bytes:
    """Read the whole body and give the connection back to the pool."""
    try:
        return raw.read()
    except Exception as e:
        raw.close()
        if _is_transport_error(e):
            raise CommError("%s (reading the reply)" % _describe(e), url, raw.status)
        raise
    finally:
        raw.release_conn()


def _is_transport_error(e: BaseException) -> bool:
    """A failed, dropped or timed-out connection (what ``connection_errors`` retries)."""
    import http.client

    return isinstance(e, (OSError, http.client.HTTPException))


def _describe(e: BaseException) -> str:
    """A short text for a transport error."""
    if isinstance(e, TimeoutError):
        return "timed out"
    return str(e) or type(e).__name__


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
    """The bytes a body will send, when known (so that it is not sent chunked)."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        return len(body)
    if hasattr(body, "read") and hasattr(body, "seek"):
        try:
            here = body.tell()
            end = body.seek(0, os.SEEK_END)
            body.seek(here)
            return end - here
        except (OSError, ValueError):
            return None
    return None


def _past(give_up: float | None, delay: float) -> bool:
    """Would waiting ``delay`` more seconds go past ``give_up`` (``failover``)?"""
    return give_up is not None and time.monotonic() + delay > give_up


def cluster_headers(settings: Any = None) -> dict[str, str]:
    """The auth header of a request to the cluster (``DISCO_AUTH_TOKEN``; ``{}`` when
    unset).  Requests to other hosts must not carry it; redirects off the host drop it."""
    from disco import auth

    return auth.headers(settings)
