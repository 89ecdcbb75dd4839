"""``redis://host:port:db``: lists in a Redis database as input and output (library.md 13).

Needs the ``redis`` client package (the ``redis`` extra).

- Input: every key of the database, found with ``SCAN`` in batches of 100; each element
  of the list at that key is one entry ``(key, element)``.  ``len()`` is ``DBSIZE``.
  Keys and elements come back as ``bytes``, as Redis stores them.
- ``redis_output_stream``: an output stream that ``LPUSH``es every ``add(key, value)``
  to the database named by the job parameter ``url``.  Put it after
  ``task_output_stream`` so the task still has its (empty) output file to report.
- ``redis_inter_stream_out`` / ``redis_inter_stream_in``: pass a stage's records
  through Redis.  The writer empties the database chosen by
  ``redis_server(partition, url, params)`` (bind it with ``functools.partial``),
  gathers the records and pushes them in one transaction on close, and writes that
  database's URL into the task's output file; the reader of the next stage reads the
  URL back from that file and streams the database.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

from disco.error import DataError, DiscoError
from disco.schemes._optional import param, require
from disco.util import schemesplit

SCAN_BATCH = 100
URL_BYTES = 1024  # redis_inter_stream_in reads the URL from the first 1024 bytes


def parse(url: str) -> tuple[str, int, int]:
    """``(host, port, db)`` of ``redis://host:port:db``."""
    try:
        host, port, db = schemesplit(url)[1].strip().rstrip("/").rsplit(":", 2)
        return host, int(port), int(db)
    except ValueError:
        raise DiscoError("Bad Redis URL %r: expected redis://host:port:db" % url)


def connect(url: str) -> Any:
    """A client of the database of ``url``."""
    redis = require("redis", "redis", "redis")
    host, port, db = parse(url)
    return redis.Redis(host=host, port=port, db=db)


def _connection_errors() -> tuple[type[BaseException], ...]:
    exceptions = require("redis.exceptions", "redis", "redis")
    return (exceptions.ConnectionError, exceptions.TimeoutError)


class RedisStream:
    """The lists of one database: iterate for ``(key, element)``, ``add`` to ``LPUSH``."""

    def __init__(self, url: str) -> None:
        self.url = url.strip()
        self.redis = connect(self.url)

    def __len__(self) -> int:
        try:
            return int(self.redis.dbsize())
        except _connection_errors() as e:
            raise DataError("Redis at %s is not answering: %s" % (self.url, e), self.url)

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        try:
            for key in self.redis.scan_iter(count=SCAN_BATCH):
                for element in self.redis.lrange(key, 0, -1):
                    yield key, element
        except _connection_errors() as e:
            raise DataError("Redis at %s is not answering: %s" % (self.url, e), self.url)

    def add(self, key: Any, value: Any) -> None:
        self.redis.lpush(key, value)

    def close(self) -> None:
        self.redis.close()


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[RedisStream, int, str]:
    stream = RedisStream(url)
    return stream, len(stream), stream.url


def redis_output_stream(
    stream: Any, partition: Any, url: str, params: Any
) -> tuple[RedisStream, int, str]:
    """Output stream writing to the database of the job parameter ``url``."""
    target = param(params, "url")
    if not target:
        raise DiscoError("redis_output_stream needs the Redis URL in the job parameter 'url'")
    out = RedisStream(target)
    return out, len(out), out.url


class AtomicDict:
    """Records for one Redis database, pushed in one transaction on ``close``.

    Opening empties the database and writes its URL into the file at ``path`` (the
    task's output, which the next stage reads with ``redis_inter_stream_in``)."""

    def __init__(self, path: str, redis_url: str) -> None:
        self.url = redis_url
        self.path = path
        self.redis = connect(redis_url)
        self.redis.flushdb()
        self.records: defaultdict[Any, list[Any]] = defaultdict(list)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(redis_url + "\n")

    def add(self, key: Any, value: Any) -> None:
        self.records[key].append(value)

    def close(self) -> None:
        if self.records:
            with self.redis.pipeline(transaction=True) as pipe:
                for key, values in self.records.items():
                    pipe.lpush(key, *values)
                pipe.execute()
            self.records.clear()
        self.redis.close()


def redis_inter_stream_out(
    stream: Any,
    partition: Any,
    url: str,
    params: Any,
    redis_server: Callable[[Any, str, Any], str],
) -> AtomicDict:
    """Output stream: records go to ``redis_server(partition, url, params)``."""
    return AtomicDict(url, redis_server(partition, url, params))


def redis_inter_stream_in(
    stream: Any, size: Any, url: str, params: Any
) -> tuple[RedisStream, int, str]:
    """Input stream: the records of the database whose URL the stream holds."""
    data = stream.read(URL_BYTES)
    target = (data.decode("utf-8") if isinstance(data, bytes) else data).strip()
    if not target.startswith("redis://"):
        raise DiscoError("%s does not hold a Redis URL (got %r)" % (url, target[:80]))
    redis_in = RedisStream(target)
    return redis_in, len(redis_in), redis_in.url
