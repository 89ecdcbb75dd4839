"""disco.test: the threaded test server and TestCase helpers (library.md 15)."""

from __future__ import annotations

import socket
import unittest
import urllib.error
import urllib.request

import pytest

from disco.error import CommError
from disco.settings import DiscoSettings
from disco.test import FailedReply, TestCase, TestServer
from tests.conftest import free_port


def serve(path: str):
    if path == "fail":
        raise FailedReply()
    if path == "parts":
        return [b"a", "b", b"c"]
    return "data for %s\n" % path


@pytest.fixture
def server():
    srv = TestServer.create(("127.0.0.1", 0), serve)
    srv.start()
    yield srv
    srv.stop()


def get(url: str, **headers: str) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_server_answers_serve_path(server) -> None:
    status, body, headers = get(server.address + "/x/y")
    assert (status, body) == (200, b"data for x/y\n")
    assert headers["Content-Length"] == str(len(body))
    assert get(server.address + "/parts")[1] == b"abc"


def test_server_ranges_and_failures(server) -> None:
    status, body, headers = get(server.address + "/abc", Range="bytes=5-")
    assert (status, body) == (206, b"for abc\n")
    assert headers["Content-Range"] == "bytes 5-12/13"
    assert get(server.address + "/abc", Range="bytes=0-3")[1] == b"data"
    assert get(server.address + "/fail")[0] == 500


def test_urls_are_single_replica_inputs(server) -> None:
    assert server.urls(["a", 1]) == [[server.address + "/a"], [server.address + "/1"]]


def test_testcase_starts_and_stops_its_server() -> None:
    port = free_port()
    seen = {}

    class Case(TestCase):
        settings = DiscoSettings(DISCO_TEST_HOST="127.0.0.1", DISCO_TEST_PORT=str(port))

        def serve(self, path):
            return path.upper()

        def test_fetch(self):
            self.assertEqual(self.test_server_address, ("127.0.0.1", port))
            url = self.test_server.urls(["hello"])[0][0]
            with urllib.request.urlopen(url, timeout=5) as resp:
                seen["body"] = resp.read()

    result = unittest.TestResult()
    Case("test_fetch").run(result)
    assert result.wasSuccessful(), result.errors + result.failures
    assert seen["body"] == b"HELLO"
    # tearDown stopped it: the port is free again
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # server side TIME_WAIT
        s.bind(("127.0.0.1", port))


def test_assertions() -> None:
    case = TestCase()
    case.assertAllEqual([1, 2], iter([1, 2]))
    with pytest.raises(AssertionError):
        case.assertAllEqual([1, 2], [1])

    def raise_404():
        raise CommError("nope", "http://x", 404)

    case.assertCommErrorCode(404, raise_404)
    with pytest.raises(AssertionError):
        case.assertCommErrorCode(500, raise_404)
    with pytest.raises(AssertionError, match="not raised"):
        case.assertCommErrorCode(404, lambda: None)


def test_testcase_runs_a_testjob_on_served_inputs(master) -> None:
    from disco.test import TestJob

    port = free_port()

    class Case(TestCase):
        settings = DiscoSettings(
            DISCO_MASTER=master.url, DISCO_TEST_HOST="127.0.0.1", DISCO_TEST_PORT=str(port)
        )

        def serve(self, path):
            return "%s\n" % path

        @staticmethod
        def map(line, params):
            yield line.strip().decode() * 2, 1

        def test_job(self):
            self.job = TestJob(master=self.disco).run(
                input=self.test_server.urls(["ab", "c"]), map=self.map
            )
            self.assertEqual(sorted(self.results(self.job)), [("abab", 1), ("cc", 1)])
            self.assertResults(self.job, list(self.results(self.job)))  # same order twice
            self.assertEqual(self.nodes, {"localhost": self.num_workers})

    result = unittest.TestResult()
    case = Case("test_job")
    case.run(result)
    assert result.wasSuccessful(), result.errors + result.failures
    # tearDown purged the job (DISCO_TEST_PURGE defaults to 'purge')
    assert master.disco.results(case.job.name, timeout=0)[0] == "unknown job"


def test_urls_of_replica_lists(server) -> None:
    """0.5's redundant-input tests pass lists of paths: one input with those replicas."""
    a = server.address
    assert server.urls(["1", ["2_fail", "200"], ("3",)]) == [
        [a + "/1"],
        [a + "/2_fail", a + "/200"],
        [a + "/3"],
    ]


def test_a_failing_setup_frees_the_test_server_port() -> None:
    """Issue 11.9: a subclass whose setUp fails after ``super().setUp()`` bound the test
    server (e.g. an external program that does not compile) leaves the port free."""
    port = free_port()
    settings = DiscoSettings(DISCO_TEST_HOST="127.0.0.1", DISCO_TEST_PORT=str(port))

    class BrokenSetUp(TestCase):
        def serve(self, path: str) -> str:
            return path

        def setUp(self) -> None:
            super().setUp()
            raise RuntimeError("the external program did not compile")

        def runTest(self) -> None:
            raise AssertionError("not reached")

    class Works(TestCase):
        def serve(self, path: str) -> str:
            return "served %s" % path

        def runTest(self) -> None:
            with urllib.request.urlopen(self.test_server.urls(["x"])[0][0], timeout=10) as r:
                self.assertEqual(r.read(), b"served x")

    BrokenSetUp.settings = Works.settings = settings
    suite = unittest.TestSuite([BrokenSetUp(), BrokenSetUp(), Works()])
    result = unittest.TestResult()
    suite.run(result)
    errors = [text for _test, text in result.errors]
    assert len(errors) == 2 and all("did not compile" in text for text in errors)
    assert "Address already in use" not in "".join(errors)
    assert result.failures == [] and result.testsRun == 3
    # The port is free after the last test too: the next test server binds it.
    TestServer.create(("127.0.0.1", port), serve).server_close()
