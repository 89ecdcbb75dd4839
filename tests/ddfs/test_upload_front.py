"""The upload front of a node's ``DDFS_PUT_PORT`` (``disco.ddfs.uploadfront``): blob PUTs
received on threads straight into the disk buffer, with the REST behaviour of ddfs.md
2.4.2 and 2.2; the requests it does not take still answered by the node's app."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import socket
import threading
import urllib.parse
from collections.abc import Iterator

import pytest

from disco.auth import HEADER, UNAUTHORIZED
from disco.ddfs import DDFS
from disco.ddfs.directwrite import BUFFER
from disco.ddfs.names import parse_ddfs_url
from disco.ddfs.node import DDFSNode
from disco.ddfs.uploadfront import UploadRunner
from tests.conftest import _assert_no_leaked_workers, child_pids, poll_for
from tests.ddfs.conftest import HTTP, three_nodes

MiB = 1 << 20


@pytest.fixture
def nodes3(tmp_path) -> Iterator[HTTP]:
    """Three local nodes, blobs with three replicas (as ``benchmarks/ddfs_bench.py``)."""
    before = child_pids()
    with three_nodes(tmp_path, DDFS_BLOB_REPLICAS="3") as m:
        yield HTTP(m)
    _assert_no_leaked_workers(before)


def put_runner(http: HTTP, host: str = "localhost") -> UploadRunner:
    runner = http.master.server.backend._put_servers[host]
    assert isinstance(runner, UploadRunner)  # the port is served by the front
    return runner


def blob_path(http: HTTP, url: str) -> str:
    parsed = parse_ddfs_url(url)
    return os.path.join(http.master.server.backend.ddfs_root(parsed.host), parsed.relpath)


def staging_files(http: HTTP, host: str = "localhost") -> list[str]:
    found = []
    for _dir, _subdirs, files in os.walk(http.master.server.backend.ddfs_root(host)):
        found.extend(f for f in files if f.startswith("!partial"))
    return found


def target(http: HTTP, prefix: str, host: str = "localhost") -> tuple[str, int, str]:
    """(address, port, path) of a fresh upload URL on ``host``."""
    query = "?replicas=1&include=%s" % host
    url = urllib.parse.urlsplit(http.ok("/ddfs/new_blob/%s%s" % (prefix, query))[0])
    assert url.hostname is not None and url.port is not None
    return url.hostname, url.port, url.path


def connect(address: str, port: int) -> socket.socket:
    return socket.create_connection((address, port), timeout=30)


def read_reply(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def status_and_body(reply: bytes) -> tuple[int, bytes]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def test_concurrent_uploads_to_three_replicas_give_identical_blobs(nodes3: HTTP) -> None:
    # more than two direct-write buffers and a tail that is not a whole block
    data = os.urandom(2 * BUFFER + 3 * MiB + 1234)
    ddfs = DDFS(nodes3.url)
    _tag, blobs = ddfs.push("t:front", [(io.BytesIO(data), "big")], replicas=3)
    [replicas] = blobs
    assert {parse_ddfs_url(u).host for u in replicas} == {"localhost", "127.0.0.2", "127.0.0.3"}
    digest = hashlib.sha256(data).hexdigest()
    for url in replicas:
        with open(blob_path(nodes3, url), "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest
        assert oct(os.stat(blob_path(nodes3, url)).st_mode & 0o777) == "0o400"
    [blob] = ddfs.pull("t:front")
    assert hashlib.sha256(blob.read()).hexdigest() == digest
    for host in ("localhost", "127.0.0.2", "127.0.0.3"):
        put_runner(nodes3, host)  # each node's port is served by the front


def test_cut_mid_body_leaves_no_blob_and_the_port_keeps_serving(nodes3: HTTP) -> None:
    size = 5 * BUFFER
    for how in ("close", "reset"):
        address, port, path = target(nodes3, "cut")
        sock = connect(address, port)
        head = "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (path, size)
        sock.sendall(head.encode() + os.urandom(2 * BUFFER + 100))  # past two disk writes
        poll_for(lambda: staging_files(nodes3) != [], 10, "the upload to start")
        if how == "reset":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        sock.close()
        poll_for(lambda: staging_files(nodes3) == [], 10, "the staging file to go")
        # the same id is still free, and the port serves the next upload
        answer = nodes3.request("http://%s:%d%s" % (address, port, path), "PUT", raw=b"whole")
        assert answer.status == 201
        assert nodes3.request(answer.json).body == b"whole"


def test_expect_continue_http10_and_an_extra_body_byte(nodes3: HTTP) -> None:
    address, port, path = target(nodes3, "curl")
    with connect(address, port) as sock:  # curl sends Expect: 100-continue
        head = "PUT %s HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n"
        sock.sendall((head % path).encode())
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 201 Created\r\n")
    assert b"\r\nContent-Type: application/json; charset=utf-8\r\n" in reply
    assert b"\r\nConnection: close\r\n" in reply  # 2.2: no keep-alive
    url = status_and_body(reply)[1].decode().strip('"')
    assert nodes3.request(url).body == b"hello"

    address, port, path = target(nodes3, "old")
    with connect(address, port) as sock:
        sock.sendall(b"PUT %s?x=1 HTTP/1.0\r\nContent-Length: 3\r\n\r\nabcd" % path.encode())
        reply = read_reply(sock)
    assert reply.startswith(b"HTTP/1.0 201 ")
    assert nodes3.request(status_and_body(reply)[1].decode().strip('"')).body == b"abc"


def test_requests_the_front_does_not_take_get_the_apps_answers(nodes3: HTTP) -> None:
    address, port, path = target(nodes3, "odd")
    base = "http://%s:%d" % (address, port)
    cases = [
        # (request head and body, expected status)
        (
            "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab" % path,
            400,
        ),
        (
            "PUT %s HTTP/1.1\r\nHost: x\r\nExpect: something\r\nConnection: close\r\nContent-Length: 2\r\n\r\nab"
            % path,
            417,
        ),
        ("PUT %s HTTP/1.1\r\nContent-Length: 2\r\n\r\nab" % path, 400),  # no Host
        (
            "PUT /ddfs/node/disk_usage HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
            405,
        ),
        (
            "POST /ddfs/node/disk_usage HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
            200,
        ),
        (
            "PUT %s HTTP/1.1\r\nHost: x\r\nX-Long: %s\r\nContent-Length: 1\r\n\r\nx"
            % (path, "y" * 70000),
            400,
        ),
    ]
    for request, status in cases:
        with connect(address, port) as sock:
            sock.sendall(request.encode())
            got = status_and_body(read_reply(sock))[0]
        assert got in ((status,) if status != 400 else (400, 431)), request[:60]
    assert staging_files(nodes3) == []
    assert nodes3.ok(base + path, "PUT", raw=b"still free")  # none of them took the id


def test_a_token_is_needed_when_the_cluster_has_one(tmp_path) -> None:
    with three_nodes(tmp_path, DISCO_AUTH_TOKEN="s3cret") as m:
        http = HTTP(m)
        headers = {HEADER: "s3cret"}
        url = http.ok("/ddfs/new_blob/guarded", headers=headers)[0]
        for token in (None, "wrong"):
            answer = http.request(url, "PUT", raw=b"x", headers={HEADER: token} if token else {})
            assert (answer.status, answer.text) == (401, UNAUTHORIZED)
        assert staging_files(http) == []
        answer = http.request(url, "PUT", raw=b"y", headers=headers)
        assert answer.status == 201 and http.request(answer.json, headers=headers).body == b"y"


def test_the_upload_gate_is_shared_with_the_apps_transfers(nodes3: HTTP) -> None:
    gate = put_runner(nodes3).uploads.gate
    held = []
    for _ in range(gate.limits.active):
        address, port, path = target(nodes3, "held")
        sock = connect(address, port)
        sock.sendall(
            b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345" % path.encode()
        )
        held.append(sock)
    poll_for(lambda: len(staging_files(nodes3)) == 3, 10, "three uploads to hold the gate")
    address, port, path = target(nodes3, "fourth")
    result: list[int] = []

    def fourth() -> None:
        result.append(
            nodes3.request("http://%s:%d%s" % (address, port, path), "PUT", raw=b"4").status
        )

    thread = threading.Thread(target=fourth)
    thread.start()
    poll_for(lambda: gate.waiting == 1, 10, "the fourth upload to wait for a slot")
    assert result == []
    held[0].sendall(b"67890")
    assert status_and_body(read_reply(held[0]))[0] == 201
    thread.join(30)
    assert result == [201]
    for sock in held:
        sock.close()
    poll_for(lambda: staging_files(nodes3) == [] and gate.waiting == 0, 10, "the rest to go")


def test_stopping_the_port_mid_upload_removes_the_staging_file(nodes3: HTTP) -> None:
    host = "127.0.0.2"
    address, port, path = target(nodes3, "stop", host)
    sock = connect(address, port)
    sock.sendall(
        b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\nabc" % path.encode()
    )
    poll_for(lambda: staging_files(nodes3, host) != [], 10, "the upload to start")
    stop = nodes3.master.server.backend.stop_put_server(host)
    assert asyncio.run_coroutine_threadsafe(stop, nodes3.master._loop).result(30)
    assert staging_files(nodes3, host) == []  # cleanup waited for the upload's thread
    try:
        reply = read_reply(sock)
    except ConnectionResetError:
        reply = b""
    assert reply == b"" or status_and_body(reply)[0] == 400
    sock.close()
    with pytest.raises(OSError):
        connect(address, port).close()


@pytest.mark.parametrize("direct", [True, False])
def test_receive_straight_from_a_socket(tmp_path, monkeypatch, direct: bool) -> None:
    if not direct:
        monkeypatch.delattr(os, "O_DIRECT", raising=False)  # a file system that refuses it
    node = DDFSNode("localhost", str(tmp_path / "ddfs"))
    data = os.urandom(BUFFER + 5000)
    upload = node.begin_blob("r$6a4-1-2", len(data))
    a, b = socket.socketpair()
    sender = threading.Thread(target=b.sendall, args=(data,))
    sender.start()
    try:
        while upload.size < len(data):
            assert upload.receive(a.recv_into, len(data) - upload.size) > 0
        url = upload.commit()
    finally:
        sender.join()
        a.close()
        b.close()
    with open(os.path.join(node.root, parse_ddfs_url(url).relpath), "rb") as f:
        assert f.read() == data
