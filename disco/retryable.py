"""Which failures a retry can fix: the one place for those rules.

A failed task attempt is *permanent* (the same attempt would fail the same way on any
node: a missing input file, a 404, a host that refuses connections, a job pack that
cannot be unpacked) or *transient* (it can pass: a timeout, a 503, a node that is away,
a crash).  Permanent failures end the job at once with their reason; transient ones are
retried (``disco.master.retrypolicy``).  The worker protocol is unchanged: a permanent
failure is sent as ``FATAL`` by the worker, or reported as ``fatal`` by the node runtime
(master-api.md 8.3, 8.7); the master needs no new message.

Used by the Python worker (``disco.worker.report``), the node runtime (job homes, worker
start) and the master.  Extend the tables here (e.g. a node-local class for a full
disk) rather than adding rules elsewhere.  Stdlib only: every task imports it.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

#: ``errno`` values of a local file that a retry will not bring back.
PERMANENT_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EACCES,
        errno.EPERM,
        errno.ENAMETOOLONG,
        errno.ELOOP,
    }
)

#: HTTP statuses that say the resource is not there or never will be for this request.
#: Every other status (5xx, 408, 429, ...) may pass: it is retried.
PERMANENT_HTTP = frozenset({400, 401, 403, 404, 405, 406, 410, 411, 414, 415, 501})

#: Exit codes of ``/bin/sh`` when it cannot execute the worker (not executable, a
#: missing file or interpreter): the job home is broken, on every node alike.
SHELL_CANNOT_EXECUTE = frozenset({126, 127})

#: URL schemes whose data is served by Disco nodes (a refused connection there means
#: the node is away, which can pass).
NODE_SCHEMES = frozenset({"disco", "dir"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then its causes and contexts, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_node_url(url: Any, node_port: int | None = None) -> bool:
    """Is ``url`` served by a Disco node (``disco://``, ``dir://``, or http on the nodes'
    ``DISCO_PORT``, which is where DDFS blobs and job results live)?"""
    if not isinstance(url, str):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.scheme in NODE_SCHEMES:
        return True
    return parts.scheme in ("http", "https") and node_port is not None and port == node_port


def _one_input_error_permanent(exc: BaseException, node_port: int | None) -> bool:
    marked = getattr(exc, "permanent", None)
    if isinstance(marked, bool):
        return marked  # the code that raised it knew (e.g. an invalid URL)
    code = getattr(exc, "code", None)
    if isinstance(code, int) and not isinstance(code, bool):
        return code in PERMANENT_HTTP
    url = getattr(exc, "url", None)
    for cause in _chain(exc):
        if isinstance(cause, socket.gaierror):
            return True  # the host name does not exist
        if isinstance(cause, ConnectionRefusedError):
            return not is_node_url(url, node_port)  # a node that is away may come back
        if isinstance(cause, OSError) and cause.errno in PERMANENT_ERRNOS:
            return True
        if isinstance(cause, OSError):
            return False  # a timeout, a reset, a full disk: can pass
    return False  # unknown: retried, as in 0.5


def input_error_permanent(exc: BaseException, node_port: int | None = None) -> bool:
    """Is a ``DataError`` of a task's input one that no retry can fix?

    In order: a ``permanent`` attribute set where the error was raised; the HTTP status
    (``PERMANENT_HTTP``); the cause: an unknown host, a refused connection (except to a
    node, which may be away), a local file error in ``PERMANENT_ERRNOS``.  Anything
    else (timeouts, resets, 5xx, unknown causes) is transient.
    An error that gave up on several replicas (``replica_errors``, set by the worker's
    ``InputIter``) is permanent only if every replica failed permanently.  ``node_port``
    is the nodes' ``DISCO_PORT``: http URLs on it are node data.
    """
    replicas = getattr(exc, "replica_errors", None)
    if replicas:
        return all(_one_input_error_permanent(e, node_port) for e in replicas)
    return _one_input_error_permanent(exc, node_port)


def extraction_error_permanent(exc: BaseException) -> bool:
    """Is a failure to unpack a job pack into a job home a fault of the pack itself
    (bad zip, unsupported compression, unsafe member, missing worker), rather than of
    the node (a full or failing disk)?"""
    import zipfile  # only the node runtime asks: not loaded by every task

    for cause in _chain(exc):
        if isinstance(cause, OSError):
            return False
        # a corrupt zip, an unsupported compression method or encryption, an unsafe
        # member or a missing worker (our own checks raise ValueError)
        if isinstance(cause, (zipfile.BadZipFile, ValueError, NotImplementedError, RuntimeError)):
            return True
    return False
