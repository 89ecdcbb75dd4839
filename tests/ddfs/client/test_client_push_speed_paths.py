"""The fast DDFS write paths of issue 13 on a real three-node cluster: an upload hands
its written ranges to the disk as it goes (``start_writeback``) and every replica holds
the pushed bytes; ``chunk`` pushes a chunk while making the next one and its blobs are
exactly ``Chunker``'s chunks, in order, records never split."""

from __future__ import annotations

import errno
import hashlib
import os
import threading

import pytest

from disco.core import result_iterator
from disco.ddfs import directwrite
from disco.ddfs import node as ddfs_node
from disco.fileutils import Chunker
from disco.util import urlsplit


def push_and_check(ddfs, tmp_path, data: bytes) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    _, blobs = ddfs.push("disco:test:big", [str(path)], replicas=3)
    assert len(blobs[0]) == 3
    assert {urlsplit(u)[1].host for u in blobs[0]} == {"localhost", "127.0.0.2", "127.0.0.3"}
    digest = hashlib.sha256(data).hexdigest()
    for url in blobs[0]:  # bytes identical on every replica
        assert hashlib.sha256(ddfs._open_any([url]).read()).hexdigest() == digest


def test_push_past_the_page_cache_bytes_identical_on_all_replicas(ddfs, tmp_path) -> None:
    """O_DIRECT where the file system allows it: whole buffers, aligned blocks of the
    tail, and the last partial block through the ordinary file."""
    sizes = [0, 1, 4095, 4096, 4097, directwrite.BUFFER - 1, directwrite.BUFFER + 4096 + 5]
    for size in sizes:
        push_and_check(ddfs, tmp_path, os.urandom(size))


def test_push_through_the_page_cache_hands_ranges_to_the_disk(ddfs, tmp_path, monkeypatch) -> None:
    """Without O_DIRECT: every SYNC_EVERY bytes, the written range's writeback starts."""
    calls: list[tuple[int, int]] = []
    real = ddfs_node.start_writeback

    def counting(fd: int, offset: int, length: int) -> None:
        calls.append((offset, length))
        real(fd, offset, length)

    monkeypatch.delattr(os, "O_DIRECT", raising=False)
    monkeypatch.setattr(ddfs_node, "SYNC_EVERY", 1 << 20)
    monkeypatch.setattr(ddfs_node, "start_writeback", counting)
    data = os.urandom(1 << 20) * 3 + os.urandom(5 << 20) + b"tail"
    push_and_check(ddfs, tmp_path, data)
    # each replica handed its whole body, range after range (each at least SYNC_EVERY),
    # to the disk before commit: the ranges of each file follow each other from 0
    covered: dict[int, int] = {}  # upload -> end of its last range
    for offset, length in calls:
        upload = next((u for u, end in covered.items() if end == offset), len(covered))
        assert offset == covered.get(upload, 0) and length >= 1 << 20
        covered[upload] = offset + length
    assert len(covered) == 3 and all(end >= len(data) - (1 << 20) for end in covered.values())


def test_direct_writer_falls_back_when_o_direct_is_refused(tmp_path, monkeypatch) -> None:
    real = os.pwrite
    calls: list[int] = []

    def refusing(fd: int, data: object, offset: int) -> int:
        calls.append(offset)
        if len(calls) == 2:  # the second direct write is refused (EINVAL)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real(fd, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(directwrite.os, "pwrite", refusing)
    data = os.urandom(3 * directwrite.BUFFER + 12345)
    path = tmp_path / "blob"
    with open(path, "xb") as f:
        writer = directwrite.DirectWriter(str(path), f)
        if not writer.direct:
            pytest.skip("no O_DIRECT here")
        for i in range(0, len(data), 100_000):
            if writer.direct:
                writer.write(data[i : i + 100_000])
            else:
                f.write(data[i : i + 100_000])
        writer.finish()
        writer.close()
    assert calls == [0, directwrite.BUFFER] and path.read_bytes() == data


def lines_file(tmp_path, n: int) -> tuple[str, list[bytes]]:
    lines = [b"%d %s\n" % (i, os.urandom(20 + i % 50).hex().encode()) for i in range(n)]
    path = tmp_path / "corpus.txt"
    path.write_bytes(b"".join(lines))
    return str(path), lines


def test_chunk_blobs_are_the_chunkers_chunks_in_order_on_every_replica(ddfs, tmp_path) -> None:
    path, lines = lines_file(tmp_path, 120000)
    chunk_size = 1 << 20
    _, blobs = ddfs.chunk("disco:test:chunks", [path], chunk_size=chunk_size, replicas=3)
    expected = list(Chunker(chunk_size=chunk_size).chunks(lines))
    assert len(blobs) == len(expected) >= 4
    assert [ddfs.blob_name(b[0]) for b in blobs] == ["corpus_txt-%d" % n for n in range(len(blobs))]
    for replicas, chunk in zip(blobs, expected, strict=True):
        assert len(replicas) == 3
        for url in replicas:  # bytes identical on all replicas
            assert ddfs._open_any([url]).read() == chunk
    assert list(result_iterator(["tag://disco:test:chunks"])) == lines  # no record split


def test_chunk_failing_in_a_later_chunk_tags_nothing_and_leaves_no_thread(ddfs, tmp_path) -> None:
    path, lines = lines_file(tmp_path, 60000)
    with open(path, "ab") as f:
        f.write(b"x" * 5000 + b"\n")
    before = {t.name for t in threading.enumerate()}
    with pytest.raises(ValueError, match="larger than max_record_size: 1000"):
        ddfs.chunk("disco:test:late", [path], chunk_size=100_000, max_record_size=1000)
    assert not ddfs.exists("disco:test:late")
    left = {t.name for t in threading.enumerate()} - before
    assert not [name for name in left if name.startswith(("ddfs-chunk-push", "chunk-zlib"))]
