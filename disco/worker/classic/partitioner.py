"""The partition number of each record a map task writes, cheap in the common case.

``default_partition`` (library.md 8.2) is ``persistent_hash(key) % nr_partitions``, an md5
per record.  A map task calls it once per record, and a word count writes millions of
records with a hundred thousand distinct keys, so ``partitioner`` gives the map loop a
one-argument function with the same results that:

- never hashes when there is one partition (every key goes to partition 0);
- for ``str``, ``bytes`` and ``int`` keys (exact types) hashes each distinct key once per
  task and remembers its partition (up to ``CACHE_LIMIT`` keys; further new keys are
  hashed every time, so memory stays bounded);
- calls the job's own ``partition`` function unchanged when it is not the default one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from disco.compat import persistent_hash

try:  # CPython's own md5: the same digest, about twice as fast on short keys as OpenSSL's
    from _md5 import md5
except ImportError:  # pragma: no cover - an interpreter built without it
    from hashlib import md5

CACHE_LIMIT = 1 << 20  # distinct keys remembered per task


def fast_default_partition(key: Any, nr_partitions: int) -> int:
    """``default_partition(key, nr_partitions, params)`` without its detours: the md5 of
    the UTF-8 / bytes / decimal digits of a ``str`` / ``bytes`` / ``int`` key read as a
    big-endian number (``int(hexdigest, 16)``), modulo ``nr_partitions``."""
    kind = type(key)
    if kind is str:
        data = key.encode("utf-8")
    elif kind is bytes:
        data = key
    elif kind is int:
        data = b"%d" % key
    else:
        return persistent_hash(key) % nr_partitions
    return int.from_bytes(md5(data).digest(), "big") % nr_partitions


def is_stable(partition: Any, nr_partitions: Any) -> bool:
    """Does every record of one key go to the same partition (no partitions, or the
    default partition function, which depends on the key only)?"""
    from disco.worker.classic.func import default_partition

    return not nr_partitions or (partition is default_partition and type(nr_partitions) is int)


def partitioner(
    partition: Any, nr_partitions: Any, params: Any, remember: bool = True
) -> Callable[[Any], Any]:
    """``key -> partition number`` for a map task: ``None`` when the job has no
    partitions, else what ``int(partition(key, nr_partitions, params))`` returns.
    ``remember=False`` when each key is asked for once (no cache)."""
    from disco.worker.classic.func import default_partition

    if not nr_partitions:
        return lambda key: None
    if partition is not default_partition or type(nr_partitions) is not int:
        return lambda key: int(partition(key, nr_partitions, params))
    if nr_partitions == 1:
        return lambda key: 0
    if not remember:
        return lambda key: fast_default_partition(key, nr_partitions)
    cache: dict[Any, int] = {}
    get = cache.get
    fast = fast_default_partition

    def cached(key: Any) -> int:
        kind = type(key)
        if kind is str or kind is bytes or kind is int:
            part = get(key)
            if part is None:
                part = fast(key, nr_partitions)
                if len(cache) < CACHE_LIMIT:
                    cache[key] = part
            return part
        return fast(key, nr_partitions)

    return cached
