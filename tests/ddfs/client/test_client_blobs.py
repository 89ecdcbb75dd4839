"""Blobs through the client: push, new_blob, pull, chunk, save, and a node that dies in
the middle of a push (ddfs.md 3.2-3.4, 8.1 "Writes")."""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os

import pytest

from disco.core import result_iterator
from disco.ddfs import DDFS
from disco.error import CommError
from disco.util import urlsplit
from disco.worker.task_io import chain_reader

HOSTS = {"localhost", "127.0.0.2", "127.0.0.3"}


def hosts_of(replicas: list[str]) -> set[str]:
    return {urlsplit(url)[1].host for url in replicas}


def test_new_blob(ddfs) -> None:
    urls = ddfs.new_blob("prefix", replicas=3)
    assert len(urls) == 3 and hosts_of(urls) == HOSTS
    assert len({url.rsplit("/", 1)[1] for url in urls}) == 1  # one blob id
    assert urls[0].rsplit("/", 1)[1].startswith("prefix$")
    assert ddfs.new_blob("prefix", replicas=0) == []
    only = ddfs.new_blob("p", replicas=1, exclude=["localhost", "127.0.0.2"])
    assert hosts_of(only) == {"127.0.0.3"}
    forced = ddfs.new_blob("p", replicas=2, include=["127.0.0.2"])
    assert urlsplit(forced[0])[1].host == "127.0.0.2"
    long_prefix = "x" * 201  # hashed by the master (ddfs.md 1.3)
    assert ddfs.new_blob(long_prefix)[0].rsplit("/", 1)[1].split("$")[0] == (
        hashlib.md5(long_prefix.encode()).hexdigest()
    )
    with pytest.raises(CommError) as e:
        ddfs.new_blob("p", replicas=4)
    assert e.value.code == 403 and "Not enough nodes for replicas." in e.value.msg


def test_push_sources_and_replicas(ddfs, tmp_path) -> None:
    path = tmp_path / "chekhov.txt"
    path.write_bytes(b"The Cherry Orchard\n" * 1000)
    tag = "disco:test:push"
    locations, blobs = ddfs.push(
        tag,
        [str(path), (io.BytesIO(b"from a file object"), "fileobj"), (b"raw bytes", "raw")],
        replicas=3,
    )
    assert locations and all(url.startswith("disco://") for url in locations)
    assert [ddfs.blob_name(b[0]) for b in blobs] == ["chekhov_txt", "fileobj", "raw"]
    assert all(len(b) == 3 and hosts_of(b) == HOSTS for b in blobs)
    assert ddfs.urls(tag) == blobs  # request order, newest first
    contents = [f.read() for f in ddfs.pull(tag)]
    assert contents == [path.read_bytes(), b"from a file object", b"raw bytes"]
    # every replica holds the same bytes
    for url in blobs[0]:
        assert ddfs._open_any([url]).read() == path.read_bytes()
    _, forced = ddfs.push(tag, [(b"x", "forced")], forceon=["127.0.0.3"])
    assert hosts_of(forced[0]) == {"127.0.0.3"}
    with pytest.raises(FileNotFoundError):
        ddfs.push(tag, [str(tmp_path / "missing")])
    assert len(ddfs.urls(tag)) == 4  # the failed push tagged nothing


def test_pull_fails_over_to_a_working_replica(ddfs) -> None:
    tag = "disco:test:failover"
    _, blobs = ddfs.push(tag, [(b"payload", "p")], replicas=2)
    broken = blobs[0][0].replace("/blob/", "/blob/00/missing/")
    ddfs.put(tag, [[broken] + blobs[0]])
    for _ in range(5):  # replicas are shuffled: every order must work
        assert [f.read() for f in ddfs.pull(tag)] == [b"payload"]
    ddfs.put(tag, [[broken]])
    with pytest.raises(CommError) as e:
        list(ddfs.pull(tag))
    assert e.value.code == 404


def test_chunk_and_read_back(ddfs, tmp_path) -> None:
    lines = [b"line %d %s\n" % (i, os.urandom(12).hex().encode()) for i in range(50000)]
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"".join(lines))
    tag = "disco:test:chunk"
    _, blobs = ddfs.chunk(tag, [str(path)], chunk_size=100 * 1024, replicas=2)
    assert 2 <= len(blobs) <= 4  # ~2.2 MB of lines, hunks of 1 MB
    assert [ddfs.blob_name(b[0]) for b in blobs] == ["corpus_txt-%d" % n for n in range(len(blobs))]
    assert all(len(b) == 2 for b in blobs)
    assert list(result_iterator(["tag://" + tag])) == lines
    # each blob is a stream of the internal record format
    first = next(ddfs.pull(tag))
    assert list(chain_reader(first, len(first), first.url))[:1] == [lines[0]]
    # small chunks: several blobs, never splitting a record
    _, small = ddfs.chunk("disco:test:chunk2", [str(path)], chunk_size=1)
    assert len(small) == len(blobs)  # one hunk per chunk either way
    assert list(result_iterator(["tag://disco:test:chunk2"])) == lines
    with pytest.raises(ValueError, match="larger than max_record_size"):
        ddfs.chunk("disco:test:chunk3", [str(path)], max_record_size=10)
    assert not ddfs.exists("disco:test:chunk3")


def test_chunk_of_served_urls_with_a_reader(ddfs, tmp_path) -> None:
    """Inputs may be tag blobs (replica lists) and a reader may decode them."""
    ddfs.chunk("disco:test:src", [], update=True)
    path = tmp_path / "words"
    path.write_bytes(b"a\nb\nc\n")
    ddfs.chunk("disco:test:src", [str(path)])
    src = list(ddfs.blobs("disco:test:src"))
    _, blobs = ddfs.chunk("disco:test:copy", src, reader=chain_reader)
    # the prefix is the safe base name of the first replica URL (ddfs.md 3.4)
    source_id = src[0][0].rsplit("/", 1)[1]
    assert [ddfs.blob_name(b[0]) for b in blobs] == [ddfs.safe_name(source_id) + "-0"]
    assert list(result_iterator(["tag://disco:test:copy"])) == [b"a\n", b"b\n", b"c\n"]


def test_chunk_of_raw_and_http_inputs(ddfs) -> None:
    _, blobs = ddfs.push("disco:test:plain", [(b"x\ny\n", "plain")])
    http_url = ddfs.node_url(blobs[0][0])
    assert http_url.startswith("http://")
    _, chunks = ddfs.chunk("disco:test:mixed", ["raw://one line", http_url])
    assert [ddfs.blob_name(c[0]) for c in chunks] == [
        "one_line-0",
        ddfs.safe_name(http_url.rsplit("/", 1)[1]) + "-0",
    ]
    assert list(result_iterator(["tag://disco:test:mixed"])) == ["one line", b"x\n", b"y\n"]


def test_save_legacy(ddfs, tmp_path) -> None:
    out = tmp_path / "out-0"
    out.write_bytes(b"result")
    tag = ddfs.save("Job@1", [str(out)])
    assert tag == "disco:job:results:Job@1"
    assert [ddfs.blob_name(b[0]) for b in ddfs.blobs(tag)] == ["disco:blob:Job@1:out-0"]


def stop_put_server(cluster, host: str) -> None:
    """Make ``host`` vanish for uploads while the master still believes it is up."""
    backend = cluster.server.backend
    runner = backend._put_servers.pop(host)
    asyncio.run_coroutine_threadsafe(runner.cleanup(), cluster._loop).result(10)


def test_node_disappearing_during_a_push(cluster, ddfs, caplog) -> None:
    def files():
        yield (b"blob 0", "b0")
        stop_put_server(cluster, "127.0.0.3")  # dies after the first blob
        for i in range(1, 12):
            yield (b"blob %d" % i, "b%d" % i)

    caplog.set_level(logging.WARNING, logger="disco.ddfs.client")
    _, blobs = ddfs.push("disco:test:dying", files(), replicas=2)
    assert len(blobs) == 12 and all(len(b) == 2 for b in blobs)
    assert all("127.0.0.3" not in hosts_of(b) for b in blobs[1:])
    assert "sending it to other nodes" in caplog.text
    assert [f.read() for f in ddfs.pull("disco:test:dying")] == [b"blob %d" % i for i in range(12)]
    # with no node left to take a copy the push fails and tags nothing
    with pytest.raises(CommError) as e:
        ddfs.push("disco:test:dying2", [(b"x", "x")], replicas=3)
    assert e.value.code in (403, None)
    assert not ddfs.exists("disco:test:dying2")


def test_retries_bound_restarts(cluster) -> None:
    ddfs = DDFS(cluster.url)
    for host in ("127.0.0.2", "127.0.0.3"):
        stop_put_server(cluster, host)
    with pytest.raises(CommError):
        ddfs.push("disco:test:none", [(b"x", "x")], replicas=1, forceon=["127.0.0.2"], retries=2)
    assert not ddfs.exists("disco:test:none")
