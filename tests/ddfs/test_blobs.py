"""Blob placement, upload and download (ddfs.md 1.3, 1.4, 2.4.1-2.4.3) over plain HTTP."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import urllib.parse

import pytest

from disco.ddfs.names import hash_dir, parse_ddfs_url, parse_object_id
from tests.conftest import poll_for
from tests.ddfs.conftest import HTTP


def blob_files(root: str) -> list[str]:
    """Every file below the blob directories of a DDFS root (staging files too)."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        if "%sblob" % os.sep in dirpath + os.sep or dirpath.endswith("blob"):
            found.extend(os.path.join(dirpath, f) for f in files)
    return found


def ddfs_root(http: HTTP, host: str = "localhost") -> str:
    return http.master.server.backend.ddfs_root(host)


# -- new_blob (2.4.1) ---------------------------------------------------------------------
def test_new_blob_gives_distinct_nodes_and_one_fresh_id(ddfs3: HTTP) -> None:
    port = ddfs3.master.server.config.put_port
    urls = ddfs3.ok("/ddfs/new_blob/chekhov_txt-0")
    assert len(urls) == 2  # DDFS_BLOB_REPLICAS
    parsed = [urllib.parse.urlsplit(u) for u in urls]
    assert len({p.hostname for p in parsed}) == 2
    assert {p.port for p in parsed} == {port}
    ids = {p.path for p in parsed}
    assert len(ids) == 1
    oid = ids.pop()[len("/ddfs/") :]
    assert parse_object_id(oid).name == "chekhov_txt-0"
    again = ddfs3.ok("/ddfs/new_blob/chekhov_txt-0?replicas=3")
    assert len({urllib.parse.urlsplit(u).hostname for u in again}) == 3
    assert urllib.parse.urlsplit(again[0]).path != "/ddfs/" + oid
    assert ddfs3.ok("/ddfs/new_blob/x?replicas=0") == []


def test_new_blob_errors(ddfs3: HTTP) -> None:
    for path, status, text in [
        ("/ddfs/new_blob/x?replicas=4", 403, "Not enough nodes for replicas."),
        ("/ddfs/new_blob/bad.name", 403, "Invalid tag"),
        ("/ddfs/new_blob/x?replicas=two", 400, "Invalid request."),  # 0.5: 500
        ("/ddfs/new_blob/x?replicas=-1", 400, "Invalid request."),
        ("/ddfs/new_blob/x?include=nosuchhost", 403, "Requested Replica not found."),
    ]:
        answer = ddfs3.request(path)
        assert (answer.status, answer.text) == (status, text), path


def test_long_prefix_is_hashed(ddfs: HTTP) -> None:
    prefix = "p" * 201
    url = ddfs.ok("/ddfs/new_blob/" + prefix)[0]
    name = parse_object_id(url.rsplit("/", 1)[1]).name
    assert name == hashlib.md5(prefix.encode()).hexdigest()
    url = ddfs.ok("/ddfs/new_blob/" + "p" * 200)[0]
    assert parse_object_id(url.rsplit("/", 1)[1]).name == "p" * 200


def test_include_exclude_and_blacklists(ddfs3: HTTP) -> None:
    def hosts(query: str) -> set[str]:
        urls = ddfs3.ok("/ddfs/new_blob/x" + query)
        return {urllib.parse.urlsplit(u).hostname for u in urls}

    for _ in range(5):
        assert hosts("?exclude=127.0.0.2&replicas=2") == {"localhost", "127.0.0.3"}
        assert "127.0.0.2" in hosts("?include=127.0.0.2&replicas=1")
    ddfs3.ok("/disco/ctrl/blacklist", "POST", "127.0.0.2")
    ddfs3.ok("/disco/ctrl/gc_blacklist", "POST", "127.0.0.3")
    for _ in range(5):
        assert hosts("?replicas=1") == {"localhost"}
    assert ddfs3.request("/ddfs/new_blob/x?replicas=2").status == 403
    assert hosts("?replicas=2&include=127.0.0.3") == {"localhost", "127.0.0.3"}


# -- upload (2.4.2) -----------------------------------------------------------------------
def test_upload_stores_read_only_blob_at_canonical_place(ddfs3: HTTP) -> None:
    replicas = ddfs3.push("data_txt", b"some bytes\n")
    assert len(replicas) == 2
    for url in replicas:
        parsed = parse_ddfs_url(url)
        assert parsed is not None and parsed.kind == "blob" and parsed.volume == "vol0"
        assert url == "disco://%s/ddfs/vol0/blob/%s/%s" % (
            parsed.host,
            hash_dir(parsed.oid),
            parsed.oid,
        )
        path = os.path.join(ddfs_root(ddfs3, parsed.host), parsed.relpath)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o400
        with open(path, "rb") as f:
            assert f.read() == b"some bytes\n"
        answer = ddfs3.request(url)  # the node's (or master's) data port
        assert answer.status == 200 and answer.body == b"some bytes\n"
        assert answer.headers["Content-Type"] == "application/octet-stream"
    assert ddfs_root(ddfs3, "127.0.0.2").endswith(os.path.join("ddfs", "127.0.0.2"))


def test_upload_answers_201_json_and_refuses_overwrite(ddfs: HTTP) -> None:
    target = ddfs.ok("/ddfs/new_blob/once")[0]
    first = ddfs.request(target + "?", "PUT", raw=b"one")  # trailing ? tolerated
    assert first.status == 201
    assert first.headers["Content-Type"].startswith("application/json")
    url = first.json
    again = ddfs.request(target, "PUT", raw=b"two")
    assert (again.status, again.text) == (409, "File exists")  # 0.5: 500 with the path
    assert ddfs.request(url).body == b"one"


def test_upload_through_proxy_prefix(ddfs: HTTP) -> None:
    target = urllib.parse.urlsplit(ddfs.ok("/ddfs/new_blob/proxied")[0])
    proxied = "http://127.0.0.1:%d/proxy/localhost/PUT%s" % (target.port, target.path)
    url = ddfs.ok(proxied, "PUT", raw=b"via proxy")
    assert ddfs.request(url).body == b"via proxy"
    assert ddfs.request("/proxy/localhost/GET/ddfs/" + parse_ddfs_url(url).relpath).body == (
        b"via proxy"
    )


def test_upload_errors(ddfs: HTTP) -> None:
    put_port = ddfs.master.server.config.put_port
    base = "http://127.0.0.1:%d" % put_port
    for path, method, status, text in [
        ("/ddfs/nodollar", "PUT", 403, "Invalid blob name"),
        ("/ddfs/bad.name$6a4-1-2", "PUT", 403, "Invalid blob name"),
        ("/ddfs/x$zz-1-2", "PUT", 403, "Invalid blob name"),
        ("/ddfs/x$1-2", "PUT", 403, "Invalid blob name"),
        ("/ddfs/x$6a4-1-2", "GET", 501, "Method not supported"),
        ("/other/x$6a4-1-2", "PUT", 404, "Not found."),
    ]:
        answer = ddfs.request(base + path, method, raw=b"x" if method == "PUT" else None)
        assert (answer.status, answer.text) == (status, text), path
    assert blob_files(ddfs_root(ddfs)) == []


def _raw_put(port: int, path: str, head: str, body: bytes, close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(("PUT %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, head)).encode() + body)
        if close:
            return b""
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
        return data


def test_chunked_upload(ddfs: HTTP) -> None:
    port = ddfs.master.server.config.put_port
    target = urllib.parse.urlsplit(ddfs.ok("/ddfs/new_blob/chunky")[0]).path
    body = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    reply = _raw_put(port, target, "Transfer-Encoding: chunked\r\n", body, close=False)
    assert reply.startswith(b"HTTP/1.1 201")
    url = reply.split(b"\r\n\r\n", 1)[1].decode().strip().strip('"')
    assert ddfs.request(url).body == b"hello world"


def test_cut_off_upload_leaves_no_half_blob(ddfs: HTTP) -> None:
    port = ddfs.master.server.config.put_port
    root = ddfs_root(ddfs)
    for head, body in [
        ("Content-Length: 100000\r\n", b"x" * 5000),
        ("Transfer-Encoding: chunked\r\n", b"1000\r\n" + b"y" * 100),
        ("Content-Length: 10000000\r\n", b"z" * 3_500_000),  # cut during disk writes
    ]:
        target = urllib.parse.urlsplit(ddfs.ok("/ddfs/new_blob/cut")[0]).path
        _raw_put(port, target, head, body, close=True)
        poll_for(lambda: blob_files(root) == [], 5, "the staging file to go")
        # the id is still free: a complete upload of it now succeeds
        answer = ddfs.request("http://127.0.0.1:%d%s" % (port, target), "PUT", raw=b"full")
        assert answer.status == 201
        os.chmod(os.path.join(root, parse_ddfs_url(answer.json).relpath), 0o600)
        os.unlink(os.path.join(root, parse_ddfs_url(answer.json).relpath))


@pytest.mark.server_errors_expected  # a full disk: 500 "Write failed" as in 0.5
def test_full_volume_refuses_upload_and_keeps_stored_blobs(ddfs: HTTP) -> None:
    kept = ddfs.push("kept", b"stored before")
    node = ddfs.master.server.backend.local_ddfs_node("localhost")
    node.reserve_kb = 1 << 60  # simulate a full disk
    try:
        target = ddfs.ok("/ddfs/new_blob/more")[0]  # the only node, even if full
        answer = ddfs.request(target, "PUT", raw=b"new data")
        assert answer.status == 500 and answer.text.startswith("Write failed: No space left")
        tag = ddfs.request("/ddfs/tag/t:full", "POST", [kept])
        assert tag.status == 500 and tag.text.startswith("Internal server error: ")
        assert ddfs.request(kept[0]).body == b"stored before"
        assert [os.path.basename(p) for p in blob_files(ddfs_root(ddfs))] == [
            kept[0].rsplit("/", 1)[1]
        ]
        assert ddfs.ok("/disco/ctrl/nodeinfo")["localhost"]["diskfree"] == 0
    finally:
        node.reserve_kb = 0
    ddfs.tag("t:full", [kept])
    assert ddfs.get("t:full")["urls"] == [kept]


# -- download (2.4.3, 2.4.14) -------------------------------------------------------------
def test_download_with_range_and_empty_blob(ddfs3: HTTP) -> None:
    data = bytes(range(256)) * 10
    for url in ddfs3.push("ranged", data):
        answer = ddfs3.request(url, headers={"Range": "bytes=10-19"})
        assert answer.status == 206 and answer.body == data[10:20]
        assert answer.headers["Content-Range"] == "bytes 10-19/%d" % len(data)
        window = ddfs3.request(url, headers={"Range": "bytes=2500-%d" % (2500 + 10485759)})
        assert window.status == 206 and window.body == data[2500:]
        assert window.headers["Content-Range"] == "bytes 2500-2559/2560"
        encoded = ddfs3.request(url.replace("$", "%24"))
        assert encoded.status == 200 and encoded.body == data
    for url in ddfs3.push("empty", b""):
        answer = ddfs3.request(url, headers={"Range": "bytes=0-10485759"})
        assert answer.body == b"" and answer.status == 200
        past = ddfs3.request(url, headers={"Range": "bytes=5-10"})
        assert past.body == b"" and past.status == 200


def test_download_errors(ddfs3: HTTP) -> None:
    url = ddfs3.push("x", b"x")[0]
    host = parse_ddfs_url(url).host
    base = "disco://%s/ddfs/" % host
    assert ddfs3.request(base + "vol0/blob/00/missing$6a4-1-2").status == 404
    assert ddfs3.request(base + "vol0/../../etc/passwd").status == 404
    assert ddfs3.request(base + "vol0/blob").status == 403
    assert ddfs3.request(url, "POST", raw=b"").status in (404, 501)
    assert ddfs3.request("/ddfs/vol0/blob", "DELETE").status == 404
