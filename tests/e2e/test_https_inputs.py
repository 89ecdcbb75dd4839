"""``https://`` inputs (library.md 13, ``scheme_https``) read by a real job from a TLS
server on loopback with a self-signed certificate the workers are told to trust."""

from __future__ import annotations

import http.server
import os
import ssl
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from disco.core import result_iterator
from disco.job import Job
from tests.conftest import self_signed_cert
from tests.worker import jobfuncs

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def https_server(tmp_path, monkeypatch) -> Iterator[str]:
    cert, key = self_signed_cert(tmp_path, "DNS:localhost,IP:127.0.0.1")
    root = tmp_path / "www"
    root.mkdir()
    (root / "words.txt").write_text("tls words\nmore tls\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # workers inherit the node's environment
    try:
        yield "https://localhost:%d" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_job_reads_https_inputs(master: Any, https_server: str) -> None:
    assert os.environ["SSL_CERT_FILE"]
    job = Job(name="Tls", master=master.url).run(
        input=[https_server + "/words.txt"], map=jobfuncs.words_map
    )
    got = sorted(result_iterator(job.wait(poll_interval=0.1)))
    assert got == [(b"more", 1), (b"tls", 1), (b"tls", 1), (b"words", 1)]
