"""``hdfs://`` through WebHDFS, and ``discodb://`` refused with a clear error (library.md 13).

The HDFS test runs a small WebHDFS front on loopback that behaves like a namenode
(``op=OPEN`` answers 307 to a datanode URL) and a datanode (serves the bytes, ignoring
``Range`` as WebHDFS does).
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from disco.core import result_iterator
from disco.error import DiscoError, JobError
from disco.job import Job
from disco.schemes import scheme_discodb, scheme_hdfs

pytestmark = pytest.mark.timeout(60)

FILES = {"/user/alice/a b.txt": b"first line\nsecond line\n", "/user/alice/c.txt": b"third\n"}


class WebHDFS(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    opened: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        if path.startswith("/webhdfs/v1/") and url.query == "op=OPEN":
            self.opened.append(path)
            self.send_response(307)
            self.send_header("Location", "/datanode/" + url.path[len("/webhdfs/v1/") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = FILES.get(path[len("/datanode") :]) if path.startswith("/datanode/") else None
        if body is None:
            self.send_error(404, "File does not exist")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def namenode() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), WebHDFS)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join(10)


def line_map(line: bytes, params: Any) -> Any:
    yield line.strip(), len(line)


def test_webhdfs_url_forms() -> None:
    want = "http://nn:9870/webhdfs/v1/user/x?op=OPEN"
    for url in ("hdfs://nn:9870:/user/x", "hdfs://nn:9870://user/x", "hdfs://nn:9870/user/x"):
        assert scheme_hdfs.webhdfs_url(url) == want
    with pytest.raises(DiscoError, match="expected hdfs://<namenode>:<port>:/<path>"):
        scheme_hdfs.webhdfs_url("hdfs://nn/user/x")


def test_hdfs_inputs_in_a_job(master: Any, namenode: str) -> None:
    job = Job(master=master.url).run(
        input=[
            "hdfs://%s:/user/alice/a b.txt" % namenode,
            "hdfs://%s:/user/alice/c.txt" % namenode,
        ],
        map=line_map,
    )
    got = sorted(result_iterator(job.wait()))
    assert got == [(b"first line", 11), (b"second line", 12), (b"third", 6)]
    assert sorted(set(WebHDFS.opened)) == [
        "/webhdfs/v1/user/alice/a b.txt",
        "/webhdfs/v1/user/alice/c.txt",
    ]


def test_discodb_is_refused_with_the_scheme_named(master: Any) -> None:
    for call in (
        lambda: scheme_discodb.Open("discodb://host/path"),
        lambda: scheme_discodb.input_stream(None, None, "discodb://host/path", None),
        lambda: scheme_discodb.discodb_output(None, None, "out", None),
    ):
        with pytest.raises(DiscoError, match=r"discodb:// scheme .* is not supported"):
            call()
    job = Job(master=master.url).run(input=["discodb://localhost/some/file"], map=line_map)
    with pytest.raises(JobError):
        job.wait()
    assert "discodb:// scheme" in master.disco.rawevents(job.name)
