"""The one synchronous HTTP client of the library, the tools and the workers.

Everything that is not the master's or a node's own aiohttp code sends its HTTP through
here: ``disco.comm`` (``request``/``download``/``upload``/``Connection``), the ``Disco``
client, the DDFS client, result reading and the health checks of ``disco start`` and the
embedded master.  It owns:

- **one connection pool per process** (a urllib3 ``PoolManager``): keep-alive connections
  are reused across requests to the same host.  The pool remembers the pid that made it;
  a forked child (a task worker forked from the zygote, a ``multiprocessing`` child) never
  touches its parent's sockets and makes its own pool.
- **one retry policy object**, :class:`RetryPolicy`, passed in by the caller (``None``:
  :data:`DEFAULT_RETRY`): how many tries, the growing random back-off, which reply
  statuses and whether failed connections are retried.  A refused connection, an unknown
  host and an invalid URL are never retried (retrying cannot help).
- **redirects** (301/302/303/307/308, at most ``MAX_REDIRECTS``), followed here rather than
  by urllib3, so that the cluster's auth header (``disco.auth``, ``X-Disco-Auth-Token``)
  is dropped when a redirect leaves the host it was meant for.
- **timeouts**: ``timeout`` seconds of socket inactivity per request; inside
  :func:`failover` a request gives up once the patience is spent without an answer.
- **streaming**: a file body is sent in ``SEND_BLOCK`` pieces with its ``Content-Length``
  (never read whole); :func:`stream` hands the reply body out piece by piece.

urllib3 is imported on the first request, not at import time: ``import disco.core`` stays
cheap for scripts that never reach the network layer before they need it.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import os
import random
import threading
import time
import urllib.parse
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
_pool: Any = None
_pool_pid = 0
_pool_lock = threading.Lock()


def pool() -> Any:
    """This process's ``urllib3.PoolManager`` (made on first use, again after a fork)."""
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is not None and _pool_pid == pid:
        return _pool
    with _pool_lock:
        if _pool is None or _pool_pid != pid:
            import urllib3

            # The parent's pool is dropped, never closed from here: its sockets are the
            # parent's connections.
            _pool = urllib3.PoolManager(
                num_pools=MAX_HOSTS,
                maxsize=POOL_SIZE,
                block=False,
                retries=False,
                blocksize=SEND_BLOCK,
            )
            _pool_pid = pid
    return _pool


_hosts: dict[tuple[str, str, int | None], Any] = {}  # the pool's pools, by host


def _host_pool(scheme: str, host: str, port: int | None) -> Any:
    """The connection pool of one host (``pool().connection_from_host``, remembered: the
    manager's own lookup parses the URL and normalizes a key on every request; a closed
    one is looked up again)."""
    manager = pool()
    key = (scheme, host, port)
    found = _hosts.get(key)
    if found is None or found[0] is not manager or found[1].pool is None:  # None: closed
        if len(_hosts) >= MAX_HOSTS:
            _hosts.clear()
        found = (manager, manager.connection_from_host(host, port, scheme))
        _hosts[key] = found
    return found[1]


def _forget_pool() -> None:
    global _pool, _pool_pid
    _pool, _pool_pid = None, 0
    _hosts.clear()


def close_pool() -> None:
    """Close this process's kept-alive connections (the next request opens new ones)."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool_pid == os.getpid():
            _pool.clear()
        _pool = None
        _hosts.clear()


if hasattr(os, "register_at_fork"):
    # the pid check in ``pool`` covers a child forked while the lock was held, too
    os.register_at_fork(after_in_child=_forget_pool)


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
            if n is None or n < 0:
                return self._raw.read(decode_content=False)
            return self._raw.read(n, decode_content=False)
        except Exception as e:  # a connection that dropped in the middle of the body
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
        if raw.length_remaining != 0 and not raw.isclosed():
            raw.close()  # an unread body: this connection cannot carry another request
        raw.release_conn()

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
                    data = raw.read(decode_content=False)
                except Exception as e:
                    raw.close()
                    raw.release_conn()
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
) -> Any:
    """One try; returns the urllib3 reply with its body unread.

    ``answer_within``: seconds for the connection and the reply's headers (the body then
    gets ``timeout``)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise _Permanent(CommError("Unsupported URL scheme %r" % parts.scheme, url))
    first = timeout
    if answer_within is not None:
        first = answer_within if timeout is None else min(timeout, answer_within)
    import urllib3

    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    try:
        raw = _host_pool(parts.scheme, parts.hostname or "", parts.port).urlopen(
            method,
            target,
            body=body,
            headers=dict(headers),
            redirect=False,
            retries=False,
            preload_content=False,
            decode_content=False,
            assert_same_host=False,
            timeout=urllib3.Timeout(connect=first, read=first),
        )
    except urllib3.exceptions.NameResolutionError as e:
        error = CommError("Cannot resolve the host of %s: %s" % (url, _describe(e)), url)
        raise _Permanent(error) from None
    except urllib3.exceptions.NewConnectionError as e:
        if isinstance(e.__cause__, ConnectionRefusedError):
            raise _Permanent(CommError("Connection refused", url)) from None
        raise
    except urllib3.exceptions.LocationValueError as e:
        error = CommError("Invalid URL: %s" % e, url)
        error.permanent = True  # type: ignore[attr-defined]  # disco.retryable
        raise _Permanent(error) from None
    except Exception as e:
        import http.client

        if isinstance(e, http.client.InvalidURL):  # the same URL stays invalid
            error = CommError("Invalid URL: %s" % e, url)
            error.permanent = True  # type: ignore[attr-defined]
            raise _Permanent(error) from None
        raise
    if first != timeout:
        sock = getattr(raw.connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.settimeout(timeout)
    return raw


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


def _finish(raw: Any, url: str) -> bytes:
    """Read the whole body and give the connection back to the pool."""
    try:
        return raw.read(decode_content=False)
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

    import urllib3

    return isinstance(e, (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException))


def _describe(e: BaseException) -> str:
    """A short text for a transport error: the innermost cause, not urllib3's wrapping."""
    import urllib3

    seen = e
    for _ in range(4):
        if isinstance(seen, urllib3.exceptions.ProtocolError) and len(seen.args) > 1:
            inner = seen.args[1]
        else:
            inner = seen.__cause__ or seen.__context__
        if not isinstance(inner, BaseException):
            break
        seen = inner
    if isinstance(seen, urllib3.exceptions.NameResolutionError):
        seen = seen.__cause__ or seen
    if isinstance(seen, urllib3.exceptions.ReadTimeoutError):
        return "timed out"
    text = str(seen) or type(seen).__name__
    if isinstance(seen, urllib3.exceptions.HTTPError) and ": " in text:
        text = text.split(": ", 1)[1]  # "<Conn...>: Failed to ..." -> "Failed to ..."
    return text


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
