"""A blob upload whose disk fills up in the middle of the body (ddfs.md 2.4.2), on a small
tmpfs disk, received by the upload front (``disco.ddfs.uploadfront``): the documented
500 ``Write failed ...``, no staging file left, and the port serves the next upload."""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse

import pytest

from disco.embedded import EmbeddedMaster
from tests.conftest import poll_for
from tests.ddfs.conftest import HTTP
from tests.faults.conftest import fill

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_leaked_workers")]

MiB = 1 << 20


def staging_files(root: str) -> list[str]:
    return [f for _d, _s, files in os.walk(root) for f in files if f.startswith("!partial")]


def send_rest(sock: socket.socket, n: int) -> None:
    try:
        sock.sendall(os.urandom(n))
    except OSError:
        pass  # the node answered and closed before the whole body arrived


@pytest.mark.server_errors_expected  # a full disk: 500 "Write failed" as in 0.5
def test_disk_full_mid_body_gives_the_documented_error(tmp_path, tmpfs) -> None:
    disk = tmpfs("ddfs", 32 * 1024)
    with EmbeddedMaster(root=tmp_path / "root", settings={"DDFS_DATA": str(disk)}) as m:
        http = HTTP(m)
        url = urllib.parse.urlsplit(http.ok("/ddfs/new_blob/full")[0])
        assert url.hostname is not None and url.port is not None
        size = 16 * MiB  # fits when the upload starts
        with socket.create_connection((url.hostname, url.port), timeout=30) as sock:
            head = "PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (url.path, size)
            sock.sendall(head.encode() + os.urandom(MiB))
            poll_for(lambda: staging_files(str(disk)) != [], 10, "the upload to start")
            filler = fill(disk)  # then the disk fills up
            sender = threading.Thread(target=send_rest, args=(sock, size - MiB))
            sender.start()  # the answer is read while the rest of the body goes out
            reply = b""
            try:
                while chunk := sock.recv(65536):
                    reply += chunk
            except ConnectionResetError:  # the node closed before the whole body arrived
                pass
            sender.join(30)
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 500 ")
        assert body == b"Write failed: No space left on device"
        assert staging_files(str(disk)) == []  # the staging file is gone
        filler.unlink()
        assert http.request(http.ok("/ddfs/new_blob/after")[0], "PUT", raw=b"fits").status == 201
