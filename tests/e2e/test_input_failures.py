"""Inputs that fail: missing ones end the job at once, passing ones are retried quickly,
dead replicas are skipped at once (issue 12 point 1, issue 11 point 6).

Real masters with the **default** retry policy (no ``retry_delay``), real workers, and
``disco.test``'s test server for HTTP inputs.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from disco.core import Disco, result_iterator
from disco.embedded import EmbeddedMaster
from disco.error import JobError
from disco.job import Job
from tests.conftest import child_pids, poll_for

pytestmark = pytest.mark.timeout(120)


# -- job functions (shipped to the workers from this module) ---------------------------------
def line_map(line: str, params: Any) -> Any:
    yield line, 1


def int_map(e: Any, params: Any) -> Any:
    yield int(e), ""


def sum_reduce(iter: Any, params: Any) -> Any:
    yield sum(k for k, v in iter), ""


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def master(tmp_path) -> Iterator[EmbeddedMaster]:
    """One node with 2 slots and the default retry policy (the shared fixture's is 0 s)."""
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[("localhost", 2)]) as m:
        yield m
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def texts(master: EmbeddedMaster, job: Any) -> list[str]:
    return [event[2] for _offset, event in Disco(master.url).events(job.name)]


def sleeps(master: EmbeddedMaster, job: Any) -> list[float]:
    found = []
    for text in texts(master, job):
        m = re.search(r"Sleeping (\d+(?:\.\d+)?) seconds before retrying\.$", text)
        if m:
            found.append(float(m.group(1)))
    return found


def max_failures(master: EmbeddedMaster, n: int) -> None:
    import json

    master.disco.request("/disco/ctrl/save_settings", json.dumps({"max_failure_rate": n}))


# -- an input that does not exist fails the job at once -----------------------------------------
@pytest.mark.parametrize("which", ["file_url", "bare_path", "refused", "http_404"])
def test_missing_input_fails_the_job_at_once(master, tmp_path, which) -> None:
    missing = str(tmp_path / "nope.txt")
    url, reason = {
        "file_url": ("file://" + missing, "No such file or directory"),
        "bare_path": (missing, "No such file or directory"),
        "refused": ("http://127.0.0.1:%d/x" % closed_port(), "Connection refused"),
        "http_404": ("%s/disco/no/such/file" % master.url, "(404)"),
    }[which]
    job = Job(master=master.url).run(input=[url], map=line_map)
    with pytest.raises(JobError) as info:
        job.wait(poll_interval=0.1, timeout=60)
    error = info.value
    assert error.exc_type == "DataError" and error.kind == "input"
    assert error.input == url and url in str(error) and reason in str(error)
    assert error.attempts == 1
    events = texts(master, job)
    assert any(t.startswith("FATAL: [map:0] DataError: ") for t in events), events
    assert sleeps(master, job) == []  # not retried
    [attempt] = master.disco.jobinfo(job.name)["failed_attempts"]
    assert attempt["severity"] == "fatal" and reason in attempt["reason"]


# -- a failure that can pass is retried quickly, and shown ---------------------------------------
def test_passing_failure_is_retried_quickly_and_shown(master, inputs_server, capsys) -> None:
    """A server that answers 500 twice, then the data: retried with short waits (the
    first within 1 s), each retry shown with its reason by ``wait()`` (events on the
    console of ``show``/``DISCO_EVENTS``, and the status line)."""
    url = inputs_server.urls(["flaky-2-a"])[0][0]
    job = Job(master=master.url).run(input=[url], map=line_map)
    results = job.wait(poll_interval=0.1, timeout=60, show="nocolor")
    assert list(result_iterator(results)) == [(b"flaky line\n", 1)]  # http lines: bytes
    delays = sleeps(master, job)
    assert len(delays) == 2 and delays[0] < 1.0 and delays[1] <= 0.5, delays
    shown = capsys.readouterr().err
    warnings = re.findall(
        r"WARNING: \[map:0\] DataError: Unable to access resource \(%s\)" % (re.escape(url)), shown
    )
    assert len(warnings) == 2, shown
    assert shown.count("(500)") >= 2
    assert 'Task map:0 failed on "localhost", 1th failures so far. Sleeping' in shown
    assert 'Task map:0 failed on "localhost", 2th failures so far. Sleeping' in shown
    assert re.search(
        r"Status: \[map\] .*, 2 failed; last failure: map:0 attempt 2 on localhost: "
        r"DataError: Unable to access resource",
        shown,
    ), shown


# -- redundant inputs: a dead replica costs at most a second ------------------------------------
def test_redundant_inputs_move_to_the_next_replica_at_once(master, inputs_server) -> None:
    """Issue 11.6, with 0.5's test input: replicas answering 500 are skipped at once;
    no task is retried."""
    inputs = ["1", ["2_fail", "2_still_fail", "200"], "3", ["4_fail", "400"]]
    urls = inputs_server.urls(inputs)
    assert urls[1] == ["%s/%s" % (inputs_server.address, p) for p in inputs[1]]
    job = Job(master=master.url).run(input=urls, map=int_map, reduce=sum_reduce)
    assert list(result_iterator(job.wait(poll_interval=0.1, timeout=60))) == [(6040, "")]
    events = texts(master, job)
    assert sleeps(master, job) == [] and not any("WARNING" in t for t in events), events
    durations = [
        float(m.group(1))
        for t in events
        if (m := re.match(r"DONE: \[map:\d\] Task finished in 0:00:(\d\d\.\d\d\d)$", t))
    ]
    assert len(durations) == 4 and max(durations) < 5.0, durations  # 2 dead replicas: <= 2 s


def test_every_replica_dead_is_retried_with_backoff(master, inputs_server) -> None:
    max_failures(master, 2)
    urls = inputs_server.urls([["2_fail", "2_still_fail"]])
    job = Job(master=master.url).run(input=urls, map=int_map)
    with pytest.raises(JobError) as info:
        job.wait(poll_interval=0.1, timeout=60)
    assert info.value.kind == "input" and info.value.attempts == 3
    delays = sleeps(master, job)
    assert len(delays) == 2 and delays[0] < 1.0 and delays[1] <= 0.5, delays
    attempts = master.disco.jobinfo(job.name)["failed_attempts"]
    assert [a["severity"] for a in attempts] == ["error"] * 3
    assert all("(500)" in a["reason"] for a in attempts)
