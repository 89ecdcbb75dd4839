"""DDFS client helpers that need no master: tag URLs, names, tokens, tarballs (ddfs.md 3)."""

from __future__ import annotations

import gzip
import io
import pickle

import pytest

from disco.ddfs import (
    DDFS,
    InvalidTag,
    canonizetag,
    canonizetags,
    istag,
    relativizetag,
    relativizetags,
    tagname,
    unsafe_re,
)
from disco.fileutils import CHUNK_SIZE, HUNK_SIZE, MAX_RECORD_SIZE, Chunker
from disco.settings import DiscoSettings
from disco.worker.task_io import chain_reader
from tests.ddfs.client.conftest import make_tarball


def test_canonizetag_and_istag() -> None:
    assert canonizetag("x") == "tag://x"
    assert canonizetag("tag://h:1/x") == "tag://h:1/x"
    assert canonizetag(["a", "b"]) == "tag://a"
    assert canonizetags("a") == ["tag://a"] and canonizetags(["a", "tag://b"]) == [
        "tag://a",
        "tag://b",
    ]
    for bad in ("", "-", "a/b", "http://x/y", [], None, 3):
        with pytest.raises(InvalidTag, match="Invalid tag"):
            canonizetag(bad)
        assert istag(bad) is None
    assert istag("urls") == "tag://urls"  # [quirk] a bare word is a tag
    assert istag(["tag://x", "y"]) == "tag://x"


def test_tagname_and_relativize() -> None:
    assert tagname("tag://x") == tagname("x") == tagname(["x"]) == "x"
    assert tagname("tag://host:8989/x") == "x"
    assert tagname("tag://secret@/x") == "x" and tagname("tag://u:secret@h/x") == "x"
    assert relativizetag("tag://x", "tag://h:1/parent") == "tag://h:1/x"
    assert relativizetag("tag://o/x", "tag://h:1/parent") == "tag://o/x"
    assert relativizetag("x", "tag://parent") == "tag://x"
    assert relativizetags(["a", "tag://b"], "tag://h/p") == ["tag://h/a", "tag://h/b"]


def test_class_names() -> None:
    assert unsafe_re.pattern == r"[^A-Za-z0-9_\-@:]"
    assert DDFS.safe_name("chekhov.txt") == "chekhov_txt" and DDFS.safe_name(b"a b") == "a_b"
    assert DDFS.blob_name("disco://n1/ddfs/vol0/blob/c0/chekhov_txt-0$6a4-1e240-9fbf1") == (
        "chekhov_txt-0"
    )
    assert DDFS.job_oob("J@1") == "disco:job:oob:J@1"
    assert DDFS.job_tag("J@1") == "disco:job:results:J@1"
    assert DDFS.job_blob("J@1", "/a/b/out.txt") == "disco:blob:J@1:out.txt"


def test_master_proxy_and_repr() -> None:
    settings = DiscoSettings(DISCO_MASTER="http://m:1", DISCO_PROXY="")
    ddfs = DDFS(settings=settings)
    assert repr(ddfs) == "DDFS master at http://m:1"
    assert DDFS("http://other:2", settings=settings).master == "http://other:2"
    assert settings["DISCO_MASTER"] == "http://other:2"  # written back, as in 0.5
    proxied = DDFS("http://other:2", proxy="http://proxy:3", settings=DiscoSettings())
    assert proxied.master == "http://proxy:3"
    assert proxied.node_url("http://n1:8990/ddfs/x$1-2-3", "PUT") == (
        "http://proxy:3/proxy/n1/PUT/ddfs/x$1-2-3"
    )
    assert ddfs.node_url("http://n1:8990/ddfs/x$1-2-3", "PUT") == "http://n1:8990/ddfs/x$1-2-3"


def test_token_selection() -> None:
    """ddfs.md 3.5: explicit, then the tag URL's, then the read/write setting."""
    settings = DiscoSettings(DDFS_READ_TOKEN="r", DDFS_WRITE_TOKEN="w")
    ddfs = DDFS("http://m:1", settings=settings)
    assert ddfs._token("t", "x", "GET") == "x"
    assert ddfs._token("t", "", "GET") == ""  # an empty token is a token
    assert ddfs._token("tag://u:url@/t", None, "PUT") == "url"
    assert ddfs._token("t", None, "GET") == "r"
    assert ddfs._token("t", None, "POST") == "w"  # 0.5 sent the read token (quirk, fixed)
    assert DDFS("http://m:1", settings=DiscoSettings())._token("t", None, "GET") is None


def test_tag_urls() -> None:
    ddfs = DDFS("http://m:1", settings=DiscoSettings())
    assert ddfs._tag_url("a:b") == "http://m:1/ddfs/tag/a:b"
    assert ddfs._tag_url("tag://tok@/a") == "http://m:1/ddfs/tag/a"
    assert ddfs._tag_url("tag://other:7/a") == "http://other:7/ddfs/tag/a"
    assert ddfs._tag_url("bad name") == "http://m:1/ddfs/tag/bad%20name"
    assert ddfs._attr_url("a", "x/y z") == "http://m:1/ddfs/tag/a/x/y%20z"


def test_tarblobs(tmp_path) -> None:
    path = make_tarball(tmp_path / "t.tar", {"dir/a.txt": b"alpha", "dir/b.log": b"beta"})
    ddfs = DDFS("http://m:1", settings=DiscoSettings())
    found = [(n, f.read(), s) for n, f, s in ddfs.tarblobs(str(path))]
    assert [(n, gzip.decompress(d), s) for n, d, s in found] == [
        ("dir_a_txt_gz", b"alpha", 5),
        ("dir_b_log_gz", b"beta", 4),
    ]
    plain = [(n, f.read()) for n, f, _ in ddfs.tarblobs(str(path), compress=False, exclude=".log")]
    assert plain == [("dir_a_txt", b"alpha")]
    assert [n for n, _, _ in ddfs.tarblobs(str(path), include="b.")] == ["dir_b_log_gz"]


@pytest.mark.parametrize("hunks", [1, 0.5, 2])
def test_chunker_keeps_small_inputs_in_one_chunk(hunks: float) -> None:
    """ddfs.md 8.3: with chunk_size = 2 hunks, about 1/2, 1 or 2 hunks of records make one
    chunk, and records are measured with pickle protocol 1."""
    assert (CHUNK_SIZE, HUNK_SIZE, MAX_RECORD_SIZE) == (64 * 1024**2, 1024**2, 1024**2)
    value = b"v" * 1000
    size = len(pickle.dumps((value, value), 1))
    records = [(value, value)] * int(hunks * HUNK_SIZE / size)
    chunks = list(Chunker(chunk_size=2 * HUNK_SIZE).chunks(records))
    assert len(chunks) == 1
    assert list(chain_reader(io.BytesIO(chunks[0]), None, "x")) == records


def test_chunks_are_what_the_record_writer_writes() -> None:
    """A chunk is byte for byte ``DiscoOutputStream_v1``'s output for its records."""
    from disco.fileutils import DiscoOutputStream_v1

    records = [b"line %d %s\n" % (i, b"w" * (i % 50)) for i in range(60000)]
    (chunk,) = Chunker().chunks(records)
    out = io.BytesIO()
    stream = DiscoOutputStream_v1(out)
    for record in records:
        stream.append(record)
    stream.close()
    assert chunk == out.getvalue()
    assert list(Chunker().chunks([])) == []


def test_local_lines_are_result_iterator_records(tmp_path) -> None:
    from disco.core import result_iterator
    from disco.ddfs.client import _local_lines

    path = tmp_path / "f.txt"
    path.write_bytes(b"a\n\nb c\nno newline")
    for url in (str(path), "file://%s" % path):
        fast = _local_lines(url, {"reader": None})
        assert fast is not None and list(fast) == list(result_iterator([url], reader=None))
    assert _local_lines(str(path), {"reader": None, "params": 1}) is None
    assert _local_lines("raw://x", {"reader": None}) is None
    assert _local_lines(str(tmp_path / "missing"), {"reader": None}) is None
