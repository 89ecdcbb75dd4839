"""``redis://host:port:db`` (library.md 13) in real jobs against a real redis-server
started on loopback: list input, ``redis_output_stream`` and the inter-stage streams."""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import pytest

from disco import schemes
from disco.core import result_iterator
from disco.job import Job
from disco.schemes import scheme_redis
from disco.schemes.scheme_redis import (
    redis_inter_stream_in,
    redis_inter_stream_out,
    redis_output_stream,
)
from disco.util import kvgroup
from disco.worker import read_index
from disco.worker.task_io import task_input_stream, task_output_stream
from tests.schemes.servers import redis_server, redis_server_path

pytestmark = pytest.mark.timeout(90)

TEXT = "a rose is a rose is a rose"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: Any) -> Any:
    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    with redis_server(str(tmp_path_factory.mktemp("redis"))) as (host, port):
        yield "redis://%s:%d" % (host, port)


def pair_map(entry: Any, params: Any) -> Any:
    key, element = entry
    yield key, element


def word_map(line: str, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def sum_reduce(iter: Any, params: Any) -> Any:
    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(int(c) for c in counts)


def fixed_db(url: str, partition: Any, task_url: str, params: Any) -> str:
    return url


def test_lists_as_job_input(master: Any, redis_url: str) -> None:
    db = scheme_redis.connect(redis_url + ":0")
    db.flushdb()
    db.rpush("fruit", "apple", "pear")
    db.rpush("veg", "kale")
    for i in range(250):  # more keys than one SCAN batch
        db.rpush("n%03d" % i, str(i))
    stream, size, url = scheme_redis.input_stream(None, None, redis_url + ":0", None)
    assert size == 252 and url == redis_url + ":0"
    job = Job(master=master.url).run(input=[redis_url + ":0"], map=pair_map)
    got = sorted(result_iterator(job.wait()))
    want = [(b"fruit", b"apple"), (b"fruit", b"pear"), (b"veg", b"kale")]
    want += [(b"n%03d" % i, str(i).encode()) for i in range(250)]
    assert got == sorted(want)


def test_redis_output_stream(master: Any, redis_url: str) -> None:
    target = redis_url + ":1"
    job = Job(master=master.url).run(
        input=["raw://" + TEXT],
        map=word_map,
        map_output_stream=(task_output_stream, redis_output_stream),
        params={"url": target},
        partitions=None,
    )
    job.wait()
    db = scheme_redis.connect(target)
    got = {key: len(db.lrange(key, 0, -1)) for key in db.keys()}
    assert got == {w.encode(): n for w, n in Counter(TEXT.split()).items()}


def test_records_between_stages_go_through_redis(master: Any, redis_url: str) -> None:
    target = redis_url + ":2"
    job = Job(master=master.url).run(
        input=["raw://" + TEXT],
        map=word_map,
        map_output_stream=(
            functools.partial(
                redis_inter_stream_out, redis_server=functools.partial(fixed_db, target)
            ),
        ),
        reduce=sum_reduce,
        reduce_input_stream=(task_input_stream, redis_inter_stream_in),
        reduce_reader=None,
    )
    got = dict(result_iterator(job.wait()))
    assert got == {w.encode(): n for w, n in Counter(TEXT.split()).items()}
    # the map's output file names the database; the database holds the records
    [[index]] = job.stageresults("map")
    [(_label, data_url, _size)] = read_index(index)
    with schemes.open(data_url) as f:
        assert f.read() == (target + "\n").encode()
    assert scheme_redis.connect(target).llen(b"rose") == 3


def test_bad_urls_and_missing_url_parameter() -> None:
    with pytest.raises(scheme_redis.DiscoError, match="expected redis://host:port:db"):
        scheme_redis.parse("redis://localhost")
    with pytest.raises(scheme_redis.DiscoError, match="job parameter 'url'"):
        redis_output_stream(None, None, "out", {})
