"""disco.retryable: which failures a retry can fix, from real errors of real requests
and files (issue 12 point 1), and comm's failover patience (issue 11 point 6)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from disco import comm
from disco.error import DataError
from disco.retryable import extraction_error_permanent, input_error_permanent, is_node_url
from disco.worker import InputIter
from tests.conftest import serving

pytestmark = pytest.mark.timeout(60)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        status = int(self.path.strip("/").split("/")[0] or 200)
        body = b"data\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def http() -> Iterator[str]:
    """A server answering ``/<status>`` with that status."""
    with serving(Handler) as srv:
        yield "http://127.0.0.1:%d" % srv.server_address[1]


@pytest.fixture
def silent() -> Iterator[tuple[str, socket.socket]]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield "http://127.0.0.1:%d/x" % sock.getsockname()[1], sock
    sock.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def error_of(url: str, **kw: Any) -> DataError:
    with pytest.raises(DataError) as info:
        with comm.open_url(url) as f:
            f.read()
    return info.value


@pytest.mark.parametrize(
    "status, permanent",
    [(404, True), (403, True), (410, True), (500, False), (502, False), (429, False)],
)
def test_http_status(http, status, permanent) -> None:
    error = error_of("%s/%d" % (http, status))
    assert error.code == status and input_error_permanent(error) is permanent


def test_503_is_transient(http) -> None:
    with comm.failover(0.3):  # comm retries 503s; keep it short
        error = error_of(http + "/503")
    assert error.code == 503 and not input_error_permanent(error)


def test_refused_is_permanent_except_on_a_node(tmp_path) -> None:
    port = closed_port()
    started = time.monotonic()
    error = error_of("http://127.0.0.1:%d/x" % port)
    assert time.monotonic() - started < 2.0  # not retried by comm
    assert input_error_permanent(error)
    # the nodes' data port (DISCO_PORT): a node that is away may come back
    assert not input_error_permanent(error, node_port=port)
    node_error = DataError("Connection refused", "disco://node7/disco/node7/x")
    node_error.__context__ = ConnectionRefusedError(111, "Connection refused")
    assert not input_error_permanent(node_error)


def test_unknown_host_and_invalid_url_are_permanent() -> None:
    assert input_error_permanent(error_of("http://no-such-host.invalid/x"))
    assert input_error_permanent(error_of("http://127.0.0.1:1/a b"))


def test_timeout_is_transient(silent) -> None:
    url, _sock = silent
    with comm.failover(0.3):
        error = error_of(url)
    assert not input_error_permanent(error)


def test_local_files(tmp_path) -> None:
    assert input_error_permanent(error_of(str(tmp_path / "nope")))
    assert input_error_permanent(error_of("file://%s" % (tmp_path / "nope")))
    assert input_error_permanent(error_of(str(tmp_path)))  # a directory
    assert not input_error_permanent(DataError("Only 1 KB disk space available", "x"))


def test_replicas_all_must_be_permanent(http, tmp_path) -> None:
    url = "%s/404" % http
    with pytest.raises(DataError) as info:
        list(InputIter([str(tmp_path / "nope"), url]))
    assert input_error_permanent(info.value)
    with pytest.raises(DataError) as info:
        list(InputIter([str(tmp_path / "nope"), "%s/500" % http]))
    assert not input_error_permanent(info.value)  # one replica may come back


def test_marked_errors_win() -> None:
    error = DataError("x", "s3://b/k", 500)
    error.permanent = True  # type: ignore[attr-defined]
    assert input_error_permanent(error)


def test_node_urls() -> None:
    assert is_node_url("disco://n1/disco/n1/x") and is_node_url("dir://n1/x")
    assert is_node_url("http://n1:8989/ddfs/x", 8989)
    assert not is_node_url("http://n1:80/x", 8989) and not is_node_url("file:///x")


def test_extraction_errors() -> None:
    import zipfile

    for cause in (ValueError("x"), NotImplementedError("x"), zipfile.BadZipFile("x")):
        try:
            raise RuntimeError("wrapper") from cause
        except RuntimeError as e:
            assert extraction_error_permanent(e)
    assert not extraction_error_permanent(OSError(28, "No space left on device"))


def test_a_silent_replica_costs_at_most_a_second(silent, http, monkeypatch) -> None:
    """Issue 11.6: a replica that accepts and never answers is left after about
    ``FAILOVER_SECONDS`` when another replica is left (not 10 tries x 600 s)."""
    import random

    url, sock = silent
    good = "%s/200" % http
    monkeypatch.setattr(random, "choice", lambda seq: min(seq))  # the silent one first
    started = time.monotonic()
    assert list(InputIter([url, good])) == [b"data\n"]
    assert time.monotonic() - started < InputIter.FAILOVER_SECONDS + 1.5
    sock.setblocking(False)
    conn, _ = sock.accept()  # the silent replica was really tried
    conn.close()


def test_the_last_replica_gets_full_patience(monkeypatch) -> None:
    """Only while another replica is left is the patience short; the last replica (or
    a single one) gets comm's normal retries and timeout."""
    import random

    monkeypatch.setattr(random, "choice", lambda seq: min(seq))
    seen: list[tuple[str, float | None]] = []

    def open(url: str) -> Any:
        seen.append((url, comm._patience.get()))
        if url != "u://last":
            raise DataError("dead", url)
        return iter([b"x"])

    assert list(InputIter(["u://a", "u://b", "u://last"], open=open)) == [b"x"]
    assert seen == [("u://a", 1.0), ("u://b", 1.0), ("u://last", None)]
    seen.clear()
    assert list(InputIter(["u://last"], open=open)) == [b"x"]
    assert seen == [("u://last", None)]
