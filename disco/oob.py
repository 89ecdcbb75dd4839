"""Out-of-band (OOB) results: the key rules and the reads of tasks (master-api.md 2.7).

OOB values live in DDFS: one blob per value in tag ``disco:job:oob:<job>``, the blob
prefix being the key (``disco.util.save_oob`` / ``load_oob``).  This module owns what
0.5 left implicit: which keys are accepted, which values, and how a task reads a value
from the node it runs on (a local replica as a file, others over ``DISCO_PORT`` of the
task, not of the worker's default settings).
"""

from __future__ import annotations

from typing import Any

from disco.error import CommError, DiscoError

#: Longer prefixes are hashed by ``new_blob`` (ddfs.md 7.3), so such a key could be
#: written but never found again: they are refused (docs/decisions.md).
MAX_KEY_LENGTH = 200

UNKNOWN = "Unknown key or jobname"


def oob_tag(jobname: str) -> str:
    """``disco:job:oob:<jobname>``."""
    return "disco:job:oob:%s" % jobname


def check_key(key: Any) -> str:
    """``key`` if it is a valid OOB key, else a ``DiscoError`` saying why."""
    from disco.task import safe_name

    if not isinstance(key, str):
        raise DiscoError("OOB key must be a str, not %s (%r)" % (type(key).__name__, key))
    if not key:
        raise DiscoError("OOB key must not be empty")
    if safe_name(key) != key:
        raise DiscoError("OOB key contains invalid characters (%s)" % key)
    if len(key) > MAX_KEY_LENGTH:
        raise DiscoError(
            "OOB key is longer than %d characters (%d): %s..."
            % (MAX_KEY_LENGTH, len(key), key[:40])
        )
    return key


def check_value(value: Any) -> bytes:
    """``value`` as ``bytes``; anything but a bytes-like object is a ``DiscoError``."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise DiscoError(
        "OOB value must be bytes, not %s (encode text first, e.g. value.encode())"
        % type(value).__name__
    )


def task_get(task: Any, key: str) -> bytes | None:
    """The newest value of ``key`` in the OOB tag of ``task``'s job, read from the node.

    ``None`` when the tag has no such key; ``DiscoError(UNKNOWN)`` when the tag does
    not exist.
    """
    from disco.ddfs import DDFS
    from disco.schemes import scheme_disco

    check_key(key)
    try:
        entries = DDFS(task.master).urls(oob_tag(task.jobname))
    except CommError as e:
        if e.code == 404:
            raise DiscoError(UNKNOWN) from None
        raise
    for replicas in entries:
        if not replicas or DDFS.blob_name(replicas[0]) != key:
            continue
        return _read_any(list(replicas), task, scheme_disco)
    return None


def _read_any(replicas: list[str], task: Any, scheme_disco: Any) -> bytes:
    local = [url for url in replicas if scheme_disco.local_path(url, task) is not None]
    others = [url for url in replicas if url not in local]
    import random  # not imported with the module: a lean fork base (disco.util)

    random.shuffle(others)
    error: Exception | None = None
    for url in local + others:
        try:
            f = scheme_disco.open(url, task)
            try:
                return f.read()
            finally:
                close = getattr(f, "close", None)
                if close is not None:
                    close()
        except (CommError, OSError, DiscoError) as e:
            error = e
    assert error is not None
    raise error
