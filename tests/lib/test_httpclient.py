"""The one HTTP client layer (``disco.httpclient``) against real servers on loopback:
connection reuse, fork safety, the retry policy, timeouts, streaming with bounded memory,
the cluster's auth header, and the policy passed in by the ``Disco`` and ``DDFS`` clients."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from disco import auth, comm, httpclient
from disco.core import Disco
from disco.ddfs import DDFS
from disco.error import CommError
from disco.httpclient import NO_RETRY, RetryPolicy
from tests.conftest import serving

FAST = RetryPolicy(base_delay=0.001, max_delay=0.01)
PATTERN = bytes(range(256)) * 4096  # 1 MiB


@dataclass
class Seen:
    """What the server saw: ``(client port, method, path, headers)`` per request."""

    requests: list[tuple[int, str, str, dict[str, str]]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    redirect_to: str = ""

    def ports(self, path: str | None = None) -> set[int]:
        return {r[0] for r in self.requests if path is None or r[2] == path}


class KeepAliveHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; paths choose the behaviour."""

    protocol_version = "HTTP/1.1"
    seen: Seen

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _note(self) -> int:
        self.seen.requests.append(
            (self.client_address[1], self.command, self.path, dict(self.headers))
        )
        n = self.seen.counts.get(self.path, 0)
        self.seen.counts[self.path] = n + 1
        return n

    def do_GET(self) -> None:
        n = self._note()
        if self.path == "/busy-twice":
            if n < 2:
                return self._reply(503, b"busy")
            return self._reply(200, b"done")
        if self.path == "/always-busy":
            return self._reply(503, b"still busy")
        if self.path == "/drop-once":
            if n == 0:  # no reply at all: the connection just ends
                self.close_connection = True
                return
            return self._reply(200, b"after the drop")
        if self.path == "/cut-once":
            if n == 0:  # headers promise 20 bytes, 9 arrive, then the connection ends
                self.send_response(200)
                self.send_header("Content-Length", "20")
                self.end_headers()
                self.wfile.write(b"cut short")
                self.close_connection = True
                return
            return self._reply(200, b"the whole reply here")
        if self.path == "/close":
            return self._reply(200, b"closed", {"Connection": "close"})
        if self.path == "/close-silently":  # keeps the connection by its headers, then not
            self._reply(200, b"port %d" % self.client_address[1])
            self.close_connection = True
            return
        if self.path == "/redirect":
            return self._reply(302, b"", {"Location": self.seen.redirect_to})
        if self.path.startswith("/big/"):
            size = int(self.path.split("/")[2])
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            left = size
            while left:
                piece = PATTERN[: min(left, len(PATTERN))]
                self.wfile.write(piece)
                left -= len(piece)
            return
        if self.path.startswith("/ddfs/tag/"):
            doc = {"version": 1, "id": "t", "last-modified": "x", "urls": [], "user-data": {}}
            return self._reply(200, json.dumps(doc).encode())
        self._reply(200, b"port %d" % self.client_address[1])

    def do_PUT(self) -> None:
        self._note()
        left = int(self.headers["Content-Length"])
        digest = hashlib.md5()
        while left:
            data = self.rfile.read(min(left, 1 << 20))
            if not data:
                break
            digest.update(data)
            left -= len(data)
        body = json.dumps([int(self.headers["Content-Length"]) - left, digest.hexdigest()])
        self._reply(200, body.encode())


@pytest.fixture
def http_server() -> Iterator[tuple[str, Seen]]:
    yield from _serve()


@pytest.fixture
def other_server() -> Iterator[tuple[str, Seen]]:
    yield from _serve()


def _serve() -> Iterator[tuple[str, Seen]]:
    seen = Seen()
    with serving(type("H", (KeepAliveHandler,), {"seen": seen})) as httpd:
        yield "http://127.0.0.1:%d" % httpd.server_address[1], seen


@pytest.fixture(autouse=True)
def fresh_pool() -> Iterator[None]:
    httpclient.close_pool()
    yield
    httpclient.close_pool()


# -- connection reuse ------------------------------------------------------------------------
def test_requests_to_one_host_reuse_one_connection(http_server) -> None:
    url, seen = http_server
    for _ in range(20):
        comm.download(url + "/x")
    for _ in range(5):
        comm.upload(url + "/put", b"payload")
    with comm.open_url(url + "/big/300000") as conn:  # ranged GETs of a Connection
        assert len(conn.read()) == 300000
    assert len(seen.requests) == 26
    assert len(seen.ports()) == 1  # one TCP connection carried every request
    assert httpclient.pool().connection_from_url(url).num_connections == 1


def test_a_kept_connection_the_server_closed_meanwhile_is_not_used_again(http_server) -> None:
    """The server closes a connection its reply said it would keep: the next request
    sees that before using it (no failure, even without retries) and opens another."""
    url, seen = http_server
    hosts = httpclient.pool().connection_from_url(url)
    first = comm.download(url + "/close-silently", retry=NO_RETRY)
    deadline = time.monotonic() + 30
    while not httpclient._dropped(hosts._idle[0].sock):  # the server's close arrives
        assert time.monotonic() < deadline
        time.sleep(0.01)
    second = comm.download(url + "/x", retry=NO_RETRY)
    assert first != second and len(seen.ports()) == 2 and hosts.num_connections == 2


def test_a_server_that_closes_each_connection_still_works(http_server) -> None:
    url, seen = http_server
    for _ in range(5):
        assert comm.download(url + "/close") == b"closed"
    assert len(seen.ports("/close")) == 5


def test_threads_share_the_pool(http_server) -> None:
    url, seen = http_server
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        bodies = list(pool.map(lambda _: comm.download(url + "/x"), range(40)))
    assert len(bodies) == 40
    assert len(seen.ports()) <= 4  # at most one connection per thread, kept and reused


# -- fork safety -----------------------------------------------------------------------------
def test_a_forked_child_makes_its_own_connection(http_server) -> None:
    url, seen = http_server
    first = int(comm.download(url + "/x").split()[1])  # the parent's pooled connection
    parents_pool = httpclient.pool()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read_end)
            port = int(comm.download(url + "/x").split()[1])
            own = httpclient.pool() is not parents_pool
            os.write(write_end, json.dumps([port, own]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        child_port, own_pool = json.loads(pipe.read())
    _pid, status = os.waitpid(pid, 0)
    assert status == 0 and own_pool
    assert child_port != first  # the child never used the parent's socket
    again = int(comm.download(url + "/x").split()[1])
    assert again == first  # and left it working for the parent
    assert seen.ports() == {first, child_port}


# -- the retry policy ------------------------------------------------------------------------
def test_503_twice_then_200_is_retried_by_the_policy(http_server, caplog) -> None:
    url, seen = http_server
    assert comm.download(url + "/busy-twice", retry=FAST) == b"done"
    assert seen.counts["/busy-twice"] == 3
    assert len([r for r in caplog.records if "503 unavailable; retry" in r.getMessage()]) == 2


def test_the_policy_bounds_attempts_and_chooses_statuses(http_server) -> None:
    url, seen = http_server
    with pytest.raises(CommError) as e:
        comm.download(url + "/always-busy", retry=FAST.replace(attempts=4))
    assert (e.value.code, e.value.msg) == (503, "still busy")
    assert seen.counts["/always-busy"] == 4
    resp = httpclient.request("GET", url + "/always-busy", retry=FAST.replace(statuses=frozenset()))
    assert resp.status == 503 and seen.counts["/always-busy"] == 5  # not retried


def test_a_dropped_connection_is_retried(http_server) -> None:
    url, seen = http_server
    assert comm.download(url + "/drop-once", retry=FAST) == b"after the drop"
    assert seen.counts["/drop-once"] == 2


def test_a_dropped_connection_is_not_retried_when_the_policy_says_so(http_server) -> None:
    url, seen = http_server
    with pytest.raises(CommError) as e:
        comm.download(url + "/drop-once", retry=FAST.replace(connection_errors=False))
    assert e.value.code is None and "gave up after 1 tries" in e.value.msg
    assert seen.counts["/drop-once"] == 1


def test_a_reply_cut_off_mid_body_is_retried(http_server) -> None:
    url, seen = http_server
    assert comm.download(url + "/cut-once", retry=FAST) == b"the whole reply here"
    assert seen.counts["/cut-once"] == 2


def test_a_reply_cut_off_mid_body_is_not_retried_when_the_policy_says_so(http_server) -> None:
    url, seen = http_server
    with pytest.raises(CommError) as e:
        comm.download(url + "/cut-once", retry=FAST.replace(connection_errors=False))
    assert "reading the reply; gave up after 1 tries" in e.value.msg
    assert seen.counts["/cut-once"] == 1


def test_the_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(base_delay=0.1, max_delay=0.5, jitter=0.0)
    assert [policy.delay(n) for n in range(5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
    jittered = RetryPolicy(base_delay=1.0, jitter=0.5)
    assert all(0.5 <= jittered.delay(0) <= 1.0 for _ in range(50))


def test_disco_and_ddfs_clients_use_the_policy_passed_in(http_server) -> None:
    url, seen = http_server
    two = FAST.replace(attempts=2)
    with pytest.raises(CommError) as e:
        Disco(url, retry=two).request("/always-busy")
    assert e.value.code == 503 and seen.counts["/always-busy"] == 2
    ddfs = DDFS(url, retry=two)
    assert ddfs.retry is two and Disco(url, retry=two).ddfs.retry is two
    assert ddfs.get("t")["id"] == "t"


# -- timeouts --------------------------------------------------------------------------------
def test_a_silent_server_times_out() -> None:
    with socket.socket() as listener:  # accepts (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = "http://127.0.0.1:%d/x" % listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(CommError) as e:
            httpclient.request("GET", url, retry=NO_RETRY, timeout=0.3)
        assert e.value.code is None and "timed out" in e.value.msg
        assert time.monotonic() - started < 10  # generous: 0.3 s asked
        started = time.monotonic()
        with httpclient.failover(0.3), pytest.raises(CommError):
            httpclient.request("GET", url, retry=FAST)  # patience, not 10 tries x 600 s
        assert time.monotonic() - started < 10


# -- streaming with bounded memory -----------------------------------------------------------
BIG = 128 * 1024 * 1024
MAX_GROWTH = 48 * 1024 * 1024  # a body held whole would be 128 MiB


def _peak_growth(script: str) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter; it prints JSON with ``before``/``after``
    peak RSS (KiB, ``ru_maxrss``) around its transfer."""
    code = "import json, resource\n" + textwrap.dedent(script)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_upload_streams_a_large_file_in_bounded_memory(http_server, tmp_path) -> None:
    url, _ = http_server
    path = tmp_path / "big"
    with open(path, "wb") as f:
        for _ in range(BIG // len(PATTERN)):
            f.write(PATTERN)
    result = _peak_growth(
        """
        from disco import comm
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        reply = comm.upload(%r, %r)[0]
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"before": before, "after": after, "reply": json.loads(reply)}))
        """
        % (url + "/put", str(path))
    )
    expected = hashlib.md5(PATTERN * (BIG // len(PATTERN))).hexdigest()
    assert result["reply"] == [BIG, expected]
    assert (result["after"] - result["before"]) * 1024 < MAX_GROWTH


def test_download_streams_a_large_body_in_bounded_memory(http_server) -> None:
    url, _ = http_server
    result = _peak_growth(
        """
        import hashlib
        from disco import httpclient
        httpclient.request("GET", %r)  # warm up: imports and the pool
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        digest, size = hashlib.md5(), 0
        with httpclient.stream("GET", %r) as reply:
            for piece in reply.iter_bytes():
                digest.update(piece)
                size += len(piece)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"before": before, "after": after, "size": size,
                          "md5": digest.hexdigest()}))
        """
        % (url + "/x", url + "/big/%d" % BIG)
    )
    assert result["size"] == BIG
    assert result["md5"] == hashlib.md5(PATTERN * (BIG // len(PATTERN))).hexdigest()
    assert (result["after"] - result["before"]) * 1024 < MAX_GROWTH


def test_a_streamed_body_cut_short_is_an_error_not_a_short_body(http_server) -> None:
    url, _ = http_server
    with httpclient.stream("GET", url + "/cut-once", retry=NO_RETRY) as reply:
        assert reply.status == 200
        with pytest.raises(CommError) as e:
            b"".join(reply.iter_bytes(4))
    assert "IncompleteRead" in e.value.msg and "reading the reply" in e.value.msg
    assert comm.download(url + "/cut-once", retry=NO_RETRY) == b"the whole reply here"


def test_a_stream_left_unread_does_not_poison_the_pool(http_server) -> None:
    url, _ = http_server
    with httpclient.stream("GET", url + "/big/%d" % (8 * len(PATTERN))) as reply:
        assert reply.status == 200 and len(reply.read(1000)) == 1000
    assert comm.download(url + "/busy-twice", retry=FAST) == b"done"


# -- the cluster's auth header ---------------------------------------------------------------
def test_the_cluster_header_is_sent_and_stays_on_its_host(http_server, other_server) -> None:
    url, seen = http_server
    elsewhere, seen_elsewhere = other_server
    settings = {auth.TOKEN_SETTING: "s3cret"}
    assert httpclient.cluster_headers(settings) == {auth.HEADER: "s3cret"}
    Disco(url, settings=_Settings(settings)).request("/x")
    assert seen.requests[-1][3].get(auth.HEADER) == "s3cret"
    seen.redirect_to = elsewhere + "/y"
    comm.download(url + "/redirect", headers=httpclient.cluster_headers(settings))
    assert seen.requests[-1][3].get(auth.HEADER) == "s3cret"
    assert auth.HEADER not in seen_elsewhere.requests[-1][3]  # another host: dropped


class _Settings(dict):
    """A settings mapping with the defaults ``Disco`` reads."""

    def __missing__(self, key: str) -> Any:
        return {"DISCO_PROXY": "", "DISCO_PORT": "8989"}.get(key, "")


def test_a_host_pool_dropped_and_closed_is_replaced(http_server) -> None:
    url, _ = http_server
    comm.download(url + "/x")
    port = int(url.rsplit(":", 1)[1])
    dropped = httpclient._host_pool("http", "127.0.0.1", port)
    dropped.close()
    assert comm.download(url + "/busy-twice", retry=FAST) == b"done"
    assert httpclient._host_pool("http", "127.0.0.1", port) is not dropped
    httpclient.pool().clear()  # forgotten with its idle connections closed
    assert comm.download(url + "/x") and dropped.num_connections == 1


def test_idle_connections_of_a_dropped_pool_are_closed(http_server) -> None:
    """A pool that is forgotten (e.g. by the fork hook) closes its idle connections when
    it is collected, or at the latest when the interpreter exits, instead of leaving
    their sockets to the garbage collector."""
    import gc

    url, _ = http_server
    comm.download(url + "/x")
    idle = list(httpclient.pool().connection_from_url(url)._idle)
    assert len(idle) == 1 and idle[0].sock is not None
    httpclient._forget_pool()
    gc.collect()
    assert idle[0].sock is None


_HTTPS_GET = """
import http.server, ssl, threading
from disco import httpclient
from disco.error import CommError

class Hello(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "5"); self.end_headers()
        self.wfile.write(b"hello")
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(CERT, KEY)
server.socket = tls.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = "https://localhost:%d/" % server.server_address[1]
try:
    for _ in range(2):
        print(httpclient.request("GET", url, retry=httpclient.NO_RETRY).body.decode())
    print("connections", httpclient.pool().connection_from_url(url).num_connections)
except CommError as e:
    print("refused", "certificate verify failed" in e.msg)
"""


@pytest.mark.parametrize("trusted", [True, False])
def test_https_verifies_the_server_against_the_default_ca_bundle(tmp_path, trusted) -> None:
    """``https://`` goes through a default TLS context (the system's CA certificates,
    host names checked): trusted (``SSL_CERT_FILE`` names the server's certificate) the
    replies come back over one kept connection, untrusted the request is refused."""
    from tests.conftest import environ_without_disco, run_python, self_signed_cert

    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    cert, key = self_signed_cert(tmp_path)
    other, _ = self_signed_cert(tmp_path / "other") if not trusted else (cert, key)
    script = _HTTPS_GET.replace("CERT", repr(cert)).replace("KEY", repr(key))
    env = environ_without_disco(SSL_CERT_FILE=cert if trusted else other, SSL_CERT_DIR="")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = run_python("-c", script, cwd=root, env=env, timeout=60).splitlines()
    assert out == (["hello", "hello", "connections 1"] if trusted else ["refused True"]), out
