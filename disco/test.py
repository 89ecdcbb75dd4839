"""Base classes for tests of Disco jobs against a running master (library.md 15).

``TestCase`` gives a ``Disco`` client for ``DISCO_MASTER``, result assertions, and, when
the test defines ``serve(path)``, a threaded HTTP ``TestServer`` on
``DISCO_TEST_HOST:DISCO_TEST_PORT`` whose ``GET /<path>`` answers ``serve(path)`` (with
``Range`` support, so Disco's ranged HTTP reads work).  ``TestJob``/``TestPipe`` are the
job classes such tests submit; ``TestRunner`` runs tests by name.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import unittest
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from disco.core import Disco, result_iterator
from disco.error import CommError
from disco.job import Job
from disco.settings import DiscoSettings

logger = logging.getLogger(__name__)

__all__ = [
    "FailedReply",
    "InterruptTest",
    "SkipTest",
    "TestCase",
    "TestJob",
    "TestLoader",
    "TestPipe",
    "TestRunner",
    "TestServer",
    "handler",
    "poll_for",
]

SkipTest = unittest.SkipTest


def poll_for(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "", interval: float = 0.02
) -> Any:
    """Wait until ``predicate()`` is truthy and return its value; after ``timeout``
    seconds raise ``AssertionError`` naming ``what``.

    The one way tests wait for something: poll a condition with a deadline, never sleep
    a fixed time.  ``timeout`` is an upper bound for a loaded machine, not an expectation.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                "timed out after %.1fs waiting for %s" % (timeout, what or predicate)
            )
        time.sleep(interval)


class FailedReply(Exception):
    """Raised by ``serve(path)`` to make the test server answer ``500``."""


class InterruptTest(Exception):
    """Stop the test run (e.g. the master went away)."""


def handler(data_generator: Callable[[str], Any]) -> type[BaseHTTPRequestHandler]:
    """A request handler class answering ``GET /<path>`` with ``data_generator(path)``.

    The reply may be ``bytes``, ``str`` or an iterable of either; ``FailedReply`` gives a
    500.  A single ``Range: bytes=a-[b]`` is honoured (206).
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def _body(self) -> bytes | None:
            path = self.path.lstrip("/")
            try:
                data = data_generator(path)
            except FailedReply:
                self.send_error(500, "Internal server error")
                return None
            return _as_bytes(data)

        def _reply(self, with_body: bool) -> None:
            body = self._body()
            if body is None:
                return
            status, start, end = 200, 0, len(body)
            rng = self.headers.get("Range", "")
            if rng.startswith("bytes=") and "," not in rng:
                first, _, last = rng[len("bytes=") :].partition("-")
                if first.isdigit():
                    start = min(int(first), len(body))
                    end = min(int(last) + 1, len(body)) if last.isdigit() else len(body)
                    status = 206
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(max(0, end - start)))
            if status == 206:
                self.send_header(
                    "Content-Range", "bytes %d-%d/%d" % (start, max(start, end - 1), len(body))
                )
            self.end_headers()
            if with_body:
                self.wfile.write(body[start:end])

        def do_GET(self) -> None:  # noqa: N802 - http.server API
            self._reply(True)

        def do_HEAD(self) -> None:  # noqa: N802 - http.server API
            self._reply(False)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("test server: " + format, *args)

    return Handler


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    return b"".join(_as_bytes(part) for part in data)


class TestServer(ThreadingHTTPServer):
    """A threaded HTTP server serving test inputs in a background thread."""

    __test__ = False  # not a test for pytest to collect

    daemon_threads = True
    allow_reuse_address = True

    @classmethod
    def create(
        cls, server_address: tuple[str, int], data_generator: Callable[[str], Any]
    ) -> TestServer:
        return cls(server_address, handler(data_generator))

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return "http://%s:%d" % (host if isinstance(host, str) else host.decode(), port)

    def urls(self, inputs: Iterable[Any]) -> list[list[str]]:
        """``[[<server>/<input>], ...]``: one input per item; an item that is a list of
        paths is one input with those replicas (``[<server>/<path>, ...]``), as in 0.5."""
        return [
            ["%s/%s" % (self.address, path) for path in input]
            if isinstance(input, (list, tuple))
            else ["%s/%s" % (self.address, input)]
            for input in inputs
        ]

    _thread: threading.Thread | None = None
    _closed = False

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.serve_forever, name="disco-test-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and free the port; calling it again (or before ``start``) is fine."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None and thread.is_alive():
            self.shutdown()
        self.server_close()
        if thread is not None:
            thread.join(10)


class TestJob(Job):
    """A ``Job`` whose ``profile`` parameter follows ``DISCO_TEST_PROFILE``."""

    __test__ = False  # not a test for pytest to collect

    @property
    def profile(self) -> bool:
        return bool(self.settings["DISCO_TEST_PROFILE"])


class _PipelineWorker:
    """``TestPipe.Worker``: the pipeline worker class, imported on first use."""

    def __get__(self, obj: Any, owner: Any) -> Any:
        from disco.worker.pipeline.worker import Worker

        return Worker


class TestPipe(TestJob):
    """A ``TestJob`` running the pipeline worker."""

    Worker = _PipelineWorker()


class TestCase(unittest.TestCase):
    """Base class of tests that run jobs on ``DISCO_MASTER``.

    Define ``serve(self, path)`` to get ``self.test_server`` (started in ``setUp``);
    keep the job under test in ``self.job`` so ``tearDown`` purges it (when
    ``DISCO_TEST_PURGE`` is set).
    """

    settings = DiscoSettings()

    @property
    def disco_master_url(self) -> str:
        return str(self.settings["DISCO_MASTER"])

    @property
    def disco(self) -> Disco:
        return Disco(self.disco_master_url, settings=self.settings)

    @property
    def ddfs(self) -> Any:
        from disco.ddfs import DDFS

        return DDFS(self.disco_master_url)

    @property
    def nodes(self) -> dict[str, int]:
        """``{host: max_workers}`` of the nodes that are not blacklisted."""
        info = self.disco.nodeinfo()
        return {host: node["max_workers"] for host, node in info.items() if not node["blacklisted"]}

    @property
    def num_workers(self) -> int:
        return sum(node["max_workers"] for node in self.disco.nodeinfo().values())

    @property
    def test_server_address(self) -> tuple[str, int]:
        return (str(self.settings["DISCO_TEST_HOST"]), int(self.settings["DISCO_TEST_PORT"]))

    def assertAllEqual(self, results: Iterable[Any], answers: Iterable[Any]) -> None:  # noqa: N802
        """Pairwise equal, and of the same length."""
        missing = object()
        for result, answer in itertools.zip_longest(results, answers, fillvalue=missing):
            self.assertEqual(result, answer)

    def assertCommErrorCode(self, code: int, callable: Callable[[], Any]) -> None:  # noqa: N802
        """``callable()`` raises ``CommError`` with HTTP status ``code``."""
        try:
            callable()
        except CommError as e:
            self.assertEqual(code, e.code)
        except Exception as e:
            raise AssertionError("CommError not raised, got %r" % (e,)) from e
        else:
            raise AssertionError("CommError not raised")

    def assertResults(self, job: Any, answers: Iterable[Any]) -> None:  # noqa: N802
        self.assertAllEqual(self.results(job), answers)

    def results(self, job: Any, **kwargs: Any) -> Iterator[Any]:
        """Records of the job's results (waits for the job)."""
        return result_iterator(job.wait(), **kwargs)

    def setUp(self) -> None:
        if hasattr(self, "serve"):
            server = TestServer.create(self.test_server_address, self.serve)
            # Runs even when a subclass's setUp fails after this (tearDown would not run):
            # the port is free for the next test.
            self.addCleanup(server.stop)
            self.test_server = server
            server.start()

    def tearDown(self) -> None:
        if hasattr(self, "serve"):
            self.test_server.stop()
        job = getattr(self, "job", None)
        if job is not None and self.settings["DISCO_TEST_PURGE"]:
            try:
                job.purge()
            except Exception as e:  # a failed purge must not hide the test's own result
                logger.warning("purging %s failed: %s", getattr(job, "name", job), e)


class TestLoader(unittest.TestLoader):
    """Loads tests by name (``test_sort`` or ``test_sort.MemorySortTestCase``)."""

    __test__ = False  # not a test for pytest to collect


class TestRunner(unittest.TextTestRunner):
    """Runs named tests with ``TestCase.settings`` set to ``settings``."""

    __test__ = False  # not a test for pytest to collect

    def __init__(self, settings: DiscoSettings, **kwargs: Any) -> None:
        kwargs.setdefault("verbosity", 2)
        super().__init__(**kwargs)
        self.settings = settings

    def run(self, *names: Any) -> unittest.TestResult:  # type: ignore[override]
        """Run the tests, with Disco's loggers at the level ``DISCO_DEBUG`` asks for."""
        from disco.settings import debug_level

        TestCase.settings = self.settings
        suite = unittest.TestSuite()
        for name in names:
            suite.addTest(
                name
                if isinstance(name, unittest.TestCase | unittest.TestSuite)
                else TestLoader().loadTestsFromName(name)
            )
        level = debug_level(self.settings["DISCO_DEBUG"])
        disco_logger = logging.getLogger("disco")
        previous = disco_logger.level
        disco_logger.setLevel(level)
        added = None
        if level == logging.DEBUG and not disco_logger.handlers:
            added = logging.StreamHandler(self.stream)
            added.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
            disco_logger.addHandler(added)
        try:
            return super().run(suite)
        finally:
            disco_logger.setLevel(previous)
            if added is not None:
                disco_logger.removeHandler(added)
