"""A node's data server cut mid-download (issue 8, section 6).

The results of a real job are on two simulated nodes (127.0.0.2 and 127.0.0.3).  Their
data servers are replaced by servers that, for the first request of every file, promise
the whole range (``Content-Length``), send half of it and close the connection.  The
client reading the results (``result_iterator``, ranged GETs over HTTP) must get every
record exactly once, and the master must serve afterwards.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from disco.core import result_iterator
from disco.embedded import EmbeddedMaster
from disco.job import Job
from disco.locality import add_process_node, remove_process_node
from tests.faults.jobs import numbers_map, sum_reduce

pytestmark = [pytest.mark.timeout(180), pytest.mark.usefixtures("no_leaked_workers")]

HOSTS = ["127.0.0.2", "127.0.0.3"]
INPUTS = ["raw://%d:%d" % (i * 500, 1000) for i in range(6)]


class Cuts:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[str] = set()
        self.cut: list[str] = []


def cutting_server(host: str, port: int, data: str, cuts: Cuts) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
            local = os.path.join(data, path[len("/disco/") :])
            if not path.startswith("/disco/") or ".." in path or not os.path.isfile(local):
                self.send_error(404)
                return
            with open(local, "rb") as f:
                body = f.read()
            start, end = 0, len(body) - 1
            m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
            if m:
                start = int(m.group(1))
                end = min(int(m.group(2)) if m.group(2) else end, len(body) - 1)
            part = body[start : end + 1]
            self.send_response(206 if m else 200)
            if m:
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, len(body)))
            self.send_header("Content-Length", str(len(part)))
            self.end_headers()
            with cuts.lock:
                first = path not in cuts.seen
                cuts.seen.add(path)
            if first and len(part) > 1:
                self.wfile.write(part[: len(part) // 2])  # cut mid-download
                self.wfile.flush()
                cuts.cut.append(path)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(part)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def cut_data_servers(m: EmbeddedMaster, cuts: Cuts) -> Iterator[None]:
    backend = m.server.backend
    servers = []
    for host in HOSTS:
        stop = asyncio.run_coroutine_threadsafe(backend.stop_data_server(host), m._loop)
        assert stop.result(30)
        servers.append(cutting_server(host, m.port, m.server.config.disco_data, cuts))
    # read over HTTP as a client on another host does, not as files of this process's
    # nodes (disco.locality)
    remove_process_node(str(m.server.config.disco_data))
    try:
        yield
    finally:
        add_process_node(str(m.server.config.disco_data))
        for server in servers:
            server.shutdown()
            server.server_close()
        for host in HOSTS:  # the nodes' own data servers come back
            asyncio.run_coroutine_threadsafe(backend.start_data_server(host), m._loop).result(30)


def expected() -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for inp in INPUTS:
        start, count = (int(x) for x in inp.split("://")[1].split(":"))
        for i in range(start, start + count):
            counts[str(i)] = counts.get(str(i), 0) + 1
    return sorted(counts.items())


def test_results_read_exactly_through_cut_downloads(tmp_path) -> None:
    nodes = [(h, 2) for h in HOSTS]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes, retry_delay=0.0) as m:
        job = Job(master=m.url).run(
            input=INPUTS, map=numbers_map, reduce=sum_reduce, partitions=4
        )
        results = job.wait(poll_interval=0.1, timeout=120)
        cuts = Cuts()
        with cut_data_servers(m, cuts):
            answer = sorted((k, int(v)) for k, v in result_iterator(results))
        assert answer == expected()
        assert cuts.cut  # downloads were really cut, and read again
        # the master serves afterwards
        again = Job(master=m.url).run(input=INPUTS[:1], map=numbers_map, reduce=sum_reduce)
        assert sorted((k, int(v)) for k, v in result_iterator(again.wait(timeout=120))) == [
            (str(i), 1) for i in sorted(range(0, 1000), key=str)
        ]
