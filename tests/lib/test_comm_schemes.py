"""``disco.comm`` against a real HTTP server on 127.0.0.1, and ``disco.schemes`` (library.md 13)."""

from __future__ import annotations

import base64
import re
import socket
import threading
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest

import disco.worker
from disco import comm, httpclient, schemes
from disco.error import CommError, DataError
from disco.fileutils import DiscoOutput
from disco.schemes import scheme_disco, scheme_raw, scheme_url
from disco.worker.task_io import StreamCombiner, chain_stream, default_stream
from tests.conftest import serving

FAST = httpclient.RetryPolicy(base_delay=0.001, max_delay=0.01)
SLOW = httpclient.RetryPolicy(base_delay=10.0, max_delay=10.0)  # a retry would be seen
BIG = b"".join(b"line %d\n" % i for i in range(200))


class State:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {"/data/big": BIG, "/data/empty": b""}
        self.flaky = 0  # 503 replies still to give on /flaky
        self.requests: list[tuple[str, str, dict]] = []
        self.puts: dict[str, bytes] = {}
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    state: State

    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        st = self.state
        with st.lock:
            st.requests.append(("GET", self.path, dict(self.headers)))
        if self.path == "/flaky":
            with st.lock:
                st.flaky -= 1
                left = st.flaky
            if left >= 0:
                return self._reply(503, b"busy")
            return self._reply(200, b"finally")
        if self.path == "/always503":
            return self._reply(503, b"still busy")
        if self.path == "/missing":
            return self._reply(404, b"no such thing")
        if self.path == "/redirect":
            return self._reply(302, b"", {"Location": "/data/big"})
        if self.path == "/auth":
            return self._reply(200, self.headers.get("Authorization", "").encode())
        path = self.path
        norange = path.startswith("/norange")
        if norange:
            path = path[len("/norange") :]
        data = st.files.get(path)
        if data is None:
            return self._reply(404, b"not found: " + path.encode())
        m = re.match(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        if m and not norange:
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            if start >= len(data):
                return self._reply(416, b"", {"Content-Range": "bytes */%d" % len(data)})
            return self._reply(
                206,
                data[start : end + 1],
                {"Content-Range": "bytes %d-%d/%d" % (start, end, len(data))},
            )
        return self._reply(200, data)

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.state.puts[self.path] = body
        self._reply(201, b'"ok"')


@pytest.fixture
def server(monkeypatch) -> Iterator[tuple[str, State]]:
    monkeypatch.setattr(httpclient, "DEFAULT_RETRY", FAST)
    state = State()
    with serving(type("H", (Handler,), {"state": state})) as httpd:
        yield "http://127.0.0.1:%d" % httpd.server_address[1], state


def test_download_and_ranges(server) -> None:
    url, _ = server
    assert comm.download(url + "/data/big") == BIG
    assert comm.download(url + "/data/big", offset=(5, 9)) == BIG[5:10]


def test_503_is_retried_then_succeeds(server, caplog) -> None:
    url, state = server
    state.flaky = 3
    assert comm.download(url + "/flaky") == b"finally"
    assert sum(1 for r in state.requests if r[1] == "/flaky") == 4
    assert "503" in caplog.text


def test_503_retries_are_bounded(server) -> None:
    url, state = server
    with pytest.raises(CommError) as e:
        comm.download(url + "/always503", retry=FAST.replace(attempts=3))
    assert e.value.code == 503 and e.value.msg == "still busy"
    assert sum(1 for r in state.requests if r[1] == "/always503") == 3


def test_connection_failure_is_retried_then_comm_error(caplog) -> None:
    """A server that accepts and hangs up (a transient failure) is retried."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    try:
        with pytest.raises(CommError) as e:
            url = "http://127.0.0.1:%d/x" % listener.getsockname()[1]
            comm.download(url, retry=FAST.replace(attempts=3))
    finally:
        listener.close()
    assert e.value.code is None and "gave up after 3 tries" in e.value.msg
    assert len(accepted) == 3
    assert len([r for r in caplog.records if "retry" in r.getMessage()]) == 2


def test_refused_connection_fails_at_once_without_retries(monkeypatch, caplog) -> None:
    """Issue 12.5: nothing listening is not transient: one error, no retry lines."""
    monkeypatch.setattr(httpclient, "DEFAULT_RETRY", SLOW)  # a retry would time the test out
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(CommError) as e:
        comm.download("http://127.0.0.1:%d/x" % port)
    assert (e.value.code, e.value.msg) == (None, "Connection refused")
    assert not [r for r in caplog.records if "retry" in r.getMessage()]


def test_other_errors_raise_at_once(server) -> None:
    url, state = server
    with pytest.raises(CommError) as e:
        comm.download(url + "/missing")
    assert (e.value.msg, e.value.url, e.value.code) == ("no such thing", url + "/missing", 404)
    assert str(e.value) == "Unable to access resource (%s/missing): no such thing (404)" % url
    assert len(state.requests) == 1


def test_redirect_auth_and_upload(server, tmp_path) -> None:
    url, state = server
    assert comm.download(url + "/redirect") == BIG
    expected = "Basic " + base64.b64encode(b"token:secret").decode()
    assert comm.download(url + "/auth", token="secret") == expected.encode()
    assert comm.upload([url + "/p1"], b"payload") == [b'"ok"']
    src = tmp_path / "f"
    src.write_bytes(b"from file")
    comm.upload(url + "/p2", str(src))
    assert state.puts == {"/p1": b"payload", "/p2": b"from file"}


def test_connection_reads_in_ranges(server) -> None:
    url, state = server
    conn = comm.open_url(url + "/data/big")
    assert isinstance(conn, comm.Connection) and len(conn) == len(BIG)
    conn.close()
    conn = comm.Connection(url + "/data/big", chunk_size=100)
    assert list(conn) == BIG.splitlines(keepends=True)
    ranges = [r[2].get("Range") for r in state.requests]
    assert ranges[-1] is not None and len(ranges) > 10
    conn = comm.Connection(url + "/data/big", chunk_size=64)
    assert conn.read(10) == BIG[:10] and conn.read(100) == BIG[10:110]
    assert conn.read() == BIG[110:]
    empty = comm.Connection(url + "/data/empty")
    assert len(empty) == 0 and empty.read() == b""
    whole = comm.Connection(url + "/norange/data/big", chunk_size=10)
    assert whole.read() == BIG and len(whole) == len(BIG)
    redirected = comm.Connection(url + "/redirect")
    assert redirected.url == url + "/data/big"


def test_open_url_resolves_disco_urls(server, monkeypatch) -> None:
    url, state = server
    monkeypatch.setenv("DISCO_PORT", url.rsplit(":", 1)[1])
    state.files["/disco/h/ab/J/x"] = b"via disco port"
    conn = comm.open_url("disco://127.0.0.1/disco/h/ab/J/x")
    assert conn.read() == b"via disco port"


def test_open_local(tmp_path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a\nb\n")
    with comm.open_url("file://%s" % path) as f:
        assert len(f) == 4 and f.url == "file://%s" % path and list(f) == [b"a\n", b"b\n"]
    with pytest.raises(DataError):
        comm.open_local(str(tmp_path / "missing"))


def test_scheme_file_raw_url(tmp_path) -> None:
    path = tmp_path / "in.txt"
    path.write_bytes(b"x\ny\n")
    for url in (str(path), "file://%s" % path):
        sc = StreamCombiner(url, default_stream, None)
        assert list(sc) == [b"x\n", b"y\n"] and len(sc) == 4
        sc.close()
    fd, size, url = scheme_raw.input_stream(None, None, "raw://hello%20world", None)
    assert (list(fd), size) == (["hello%20world"], 13)
    assert list(StreamCombiner("raw://abc", default_stream, None)) == ["abc"]
    assert list(scheme_url.input_stream(None, None, "url://x", None)[0]) == ["url://x"]
    with pytest.raises(Exception, match="Unknown URL scheme"):
        schemes.import_scheme("nosuch://x")


def test_scheme_http(server) -> None:
    url, _ = server
    sc = StreamCombiner(url + "/data/big", default_stream, None)
    assert list(sc)[:2] == [b"line 0\n", b"line 1\n"] and sc.size == len(BIG)
    sc.close()


def test_unknown_host_is_not_retried(monkeypatch) -> None:
    monkeypatch.setattr(httpclient, "DEFAULT_RETRY", SLOW)  # a retry would time the test out
    with pytest.raises(CommError, match="Cannot resolve"):
        comm.download("http://no-such-host.invalid:1/x")


def make_task(tmp_path, host: str, port: int) -> types.SimpleNamespace:
    return types.SimpleNamespace(
        host=host,
        disco_port=port,
        disco_data=str(tmp_path / "data"),
        ddfs_data=str(tmp_path / "ddfs"),
        group_label=0,
    )


def test_scheme_disco_local_and_remote(server, tmp_path, monkeypatch) -> None:
    url, state = server
    port = int(url.rsplit(":", 1)[1])
    local = tmp_path / "data" / "n1" / "ab" / "J" / "out"
    local.parent.mkdir(parents=True)
    local.write_bytes(b"local\n")
    task = make_task(tmp_path, "n1", port)
    # host is the task's host: local read
    with scheme_disco.open("disco://n1/disco/n1/ab/J/out", task=task) as f:
        assert f.read() == b"local\n"
    # another host whose path exists under this node's data dir: local read too
    with scheme_disco.open("disco://n2/disco/n1/ab/J/out", task=task) as f:
        assert f.read() == b"local\n"
    # otherwise HTTP to http://host:<disco_port>/path, with the port of the active task
    state.files["/disco/n2/ab/J/out"] = b"remote\n"
    monkeypatch.setattr(disco.worker, "active_task", task, raising=False)
    f = scheme_disco.open("disco://127.0.0.1/disco/n2/ab/J/out")
    assert isinstance(f, comm.Connection) and f.read() == b"remote\n"
    # http on DISCO_PORT for local data is a local read as well
    sc = StreamCombiner("http://n1:%d/disco/n1/ab/J/out" % port, default_stream, None)
    assert list(sc) == [b"local\n"]
    sc.close()


def test_scheme_dir_and_chain_stream(tmp_path, monkeypatch) -> None:
    task = make_task(tmp_path, "n1", 1)
    monkeypatch.setattr(disco.worker, "active_task", task, raising=False)
    jobdir = tmp_path / "data" / "n1" / "ab" / "J"
    lines = []
    for label in (0, 1):
        out = DiscoOutput(str(jobdir / ("part-%d" % label)))
        out.add(b"k%d" % label, label)
        out.close()
        lines.append("%d disco://n1/disco/n1/ab/J/part-%d %d\n" % (label, label, out.size()))
    (jobdir / ".disco").mkdir()
    (jobdir / ".disco" / "m-0-1.results").write_text("".join(lines))
    index = "dir://n1/disco/n1/ab/J/.disco/m-0-1.results"
    assert list(schemes.open(index)) == [(b"k0", 0)]  # filtered by the task's group_label
    assert list(
        schemes.open(index, task=types.SimpleNamespace(**{**vars(task), "group_label": 1}))
    ) == [(b"k1", 1)]
    sc = StreamCombiner("disco://n1/disco/n1/ab/J/part-1", chain_stream, None)
    assert list(sc) == [(b"k1", 1)]
    sc.close()
    assert list(schemes.open_chain("disco://n1/disco/n1/ab/J/part-0")) == [(b"k0", 0)]
    monkeypatch.setattr(disco.worker, "active_task", None, raising=False)
    assert sorted(schemes.open(index, task=task).urls) == ["disco://n1/disco/n1/ab/J/part-0"]
