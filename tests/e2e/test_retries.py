"""Retries that cost little, and failures that are not retried (issue 8, section 3).

Real masters with the **default** retry policy (no ``retry_delay``, unlike the shared
fixtures), real worker processes: crashed or killed workers are retried at once (on
another node where there is one) and cost little; a job pack or job home that cannot
work on any node ends the job at once with its reason; ``jobinfo`` and the events give
the real reason of every failed attempt.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from disco.core import Disco
from disco.embedded import EmbeddedMaster
from disco.error import JobError
from tests.conftest import child_pids, poll_for
from tests.master.packs import make_pack, v2_dict, with_compression_method
from tests.master.test_api import Client

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks"))
import retry_gap  # noqa: E402  (its job and killer: the benchmark measures the same gaps)

pytestmark = pytest.mark.timeout(240)


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture
def default_policy(tmp_path) -> Iterator[EmbeddedMaster]:
    """One node with 2 slots and the default retry policy."""
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[("localhost", 2)]) as m:
        yield m
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


@pytest.fixture
def default_cluster(tmp_path) -> Iterator[EmbeddedMaster]:
    """Three nodes and the default retry policy."""
    before = child_pids()
    nodes = [("localhost", 2), ("127.0.0.2", 2), ("127.0.0.3", 2)]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes) as m:
        yield m
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


def events(master: EmbeddedMaster, job: Any) -> list[tuple[str, str, str]]:
    return [tuple(event) for _offset, event in Disco(master.url).events(job.name)]  # type: ignore[misc]


def job_seconds(master: EmbeddedMaster, job: Any) -> float:
    """The job's duration as the master recorded it (``READY: Job done in H:MM:SS.mmm``)."""
    for _time, _host, text in events(master, job):
        found = re.fullmatch(r"READY: Job done in (\d+):(\d\d):(\d\d\.\d\d\d)", text)
        if found:
            hours, mins, secs = found.groups()
            return int(hours) * 3600 + int(mins) * 60 + float(secs)
    raise AssertionError("no READY event")


def retry_delays(master: EmbeddedMaster, job: Any) -> list[tuple[str, str, int, float]]:
    """``(task, host, n, seconds)`` of every 10.3 retry event."""
    found = []
    for _time, _host, text in events(master, job):
        m = re.fullmatch(
            r'Task (\S+) failed on "([^"]*)", (\d+)th failures so far\. '
            r"Sleeping (\d+(?:\.\d+)?) seconds before retrying\.",
            text,
        )
        if m:
            found.append((m.group(1), m.group(2), int(m.group(3)), float(m.group(4))))
    return found


def run_slow_job(
    master: EmbeddedMaster, piddir: str, kills: int, inputs: int = 10, seconds: float = 1.0
) -> tuple[Any, retry_gap.Killer]:
    """``inputs`` inputs of ``seconds``; the first attempts of ``kills`` inputs are
    SIGKILLed (``benchmarks/retry_gap.py``'s job and killer); the answer is checked."""
    return retry_gap.run_job(master.url, piddir, kills, seconds, inputs)


# -- a crashed or killed worker is retried at once ----------------------------------------------
def test_three_sigkilled_workers_cost_little(default_policy, tmp_path) -> None:
    """Issue 8.3: SIGKILL 3 workers of a 10-input job: the answer is exact, every retry
    starts within 1 s, and the job is at most 1.5x slower than without kills (durations
    as the master recorded them)."""
    m = default_policy
    base_job, _ = run_slow_job(m, str(tmp_path / "pids-base"), kills=0)
    killed_job, killer = run_slow_job(m, str(tmp_path / "pids-kill"), kills=3)
    assert len(killer.killed) == 3
    base, killed = job_seconds(m, base_job), job_seconds(m, killed_job)
    ratio = killed / base
    print(
        "10 inputs x 1 s on 2 slots: %.3f s; with 3 workers SIGKILLed: %.3f s (x%.2f)"
        % (base, killed, ratio)
    )
    assert ratio <= 1.5, (base, killed)
    delays = retry_delays(m, killed_job)
    assert len(delays) == 3 and all(n == 1 and s < 1.0 for _t, _h, n, s in delays), delays
    info = m.disco.jobinfo(killed_job.name)
    reasons = [a["reason"] for a in info["failed_attempts"]]
    assert reasons == ["WorkerKilled: the worker process was killed by signal 9 (SIGKILL)"] * 3
    assert [a["kind"] for a in info["failed_attempts"]] == ["signal"] * 3


def test_a_killed_workers_task_restarts_within_1s(tmp_path) -> None:
    """Issue 13: a killed worker's task restarts within 1 s, from recorded times: the kill
    (noted by the killer) and the start of the task's next attempt (recorded by its own
    code).  The gap is the retry delay the master chose (its ``Sleeping`` event, at most
    0.5 s by the policy) plus the cost of the restart itself (noticing the death,
    scheduling, forking the worker, the protocol up to the job's code), which is about
    0.03 s on an idle machine.  The test allows that part 1 s: the new worker runs at
    nice 19 and, on a machine loaded by other work, waits for a core (0.5 s seen at a
    load average of 6); ``benchmarks/retry_gap.py`` reports the gaps against 1 s.  The
    node has a free slot for every retry (6 slots, 3 inputs), so a gap never includes
    waiting for another task to finish."""
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", nodes=[("localhost", 6)]) as m:
        job, killer = run_slow_job(m, str(tmp_path / "pids"), kills=3, inputs=3, seconds=0.3)
        delays = {task: s for task, _h, _n, s in retry_delays(m, job)}
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")
    gaps = retry_gap.gaps(killer, str(tmp_path / "pids"))
    print("kill -> restart gaps (s): %s; chosen delays: %s" % (gaps, delays))
    assert sorted(gaps) == ["0", "1", "2"]
    for line, gap in gaps.items():
        delay = delays["map:%s" % line]
        assert 0.0 <= delay <= 0.5  # the policy's first retry
        assert delay <= gap < delay + 1.0, (line, gap, delay)


def test_a_retry_takes_the_next_free_slot_before_queued_tasks(default_policy, tmp_path) -> None:
    """On a full node (2 slots, 10 inputs of 1 s), a killed task's retry does not wait
    behind the inputs queued after it: its next attempt is assigned before the last
    input's first one (the master's events, in order)."""
    m = default_policy
    job, killer = run_slow_job(m, str(tmp_path / "pids"), kills=1)
    (line,) = killer.killed
    texts = [t for _ts, _h, t in events(m, job)]
    assigned = [t.split(" assigned to ")[0] for t in texts if " assigned to " in t]
    retried = "map:%s" % line
    assert assigned.count(retried) == 2, assigned
    second = len(assigned) - 1 - assigned[::-1].index(retried)
    assert second < assigned.index("map:9"), assigned


def test_a_killed_worker_is_retried_on_another_node(default_cluster, tmp_path) -> None:
    m = default_cluster
    job, killer = run_slow_job(m, str(tmp_path / "pids"), kills=1)
    (line,) = killer.killed
    [(task, host, n, seconds)] = retry_delays(m, job)
    assert n == 1 and seconds < 1.0
    assigned = [
        t.split(" assigned to ")[1] for _ts, _h, t in events(m, job) if t.startswith(task + " ")
    ]
    assert len(assigned) == 2 and assigned[0] == host and assigned[1] != host, assigned


# -- deterministic failures: not retried ---------------------------------------------------------
@pytest.fixture
def client(default_policy) -> Client:
    return Client(default_policy)


def one_stage(worker: str = "worker.sh", **extra: Any) -> dict:
    return v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]], worker=worker, **extra)


def submit_reply(client: Client, pack: bytes) -> list:
    status, _, body = client.request("/disco/job/new", pack)
    assert status == 200
    return json.loads(body)


def test_job_pack_that_cannot_be_unpacked_is_refused_at_submit(client) -> None:
    """Was: accepted, then every attempt failed "That compression method is not
    supported", 20 s apart, up to the failure limit."""
    pack = with_compression_method(make_pack(one_stage()), 99)
    reply = submit_reply(client, pack)
    assert reply == [
        "error",
        "Job failed to start: \"invalid jobhome: member 'worker.sh' of the job home archive "
        'uses compression method 99, which is not supported (use stored or deflated)"',
    ]
    assert client.get("/disco/ctrl/joblist") == []
    corrupt = make_pack(one_stage()).replace(b"PK\x05\x06", b"XX\x05\x06")  # no end record
    assert submit_reply(client, corrupt)[1].startswith(
        'Job failed to start: "invalid jobhome: the job home is not a valid zip archive'
    )


@pytest.mark.parametrize(
    "worker, why",
    [
        ("bin/nothing", "worker 'bin/nothing' is not in the job home"),
        ("/bin/sh", "invalid worker path '/bin/sh'"),
        ("../worker.sh", "invalid worker path '../worker.sh'"),
    ],
)
def test_unknown_worker_is_refused_at_submit(client, worker, why) -> None:
    reply = submit_reply(client, make_pack(one_stage(worker)))
    assert reply == ["error", 'Job failed to start: "invalid jobhome: %s"' % why]


def test_worker_that_cannot_start_fails_the_job_at_once(client) -> None:
    """A job home whose worker cannot be executed (a missing interpreter): the first
    attempt fails and the job with it, with that reason."""
    pack = make_pack(one_stage(), files={"worker.sh": "#!/nonexistent/interpreter\n"})
    reply = submit_reply(client, pack)
    assert reply[0] == "ok"
    name = reply[1]
    assert client.wait(name, timeout=60)[0] == "dead"
    info = client.get("/disco/ctrl/jobinfo?name=" + name)
    [attempt] = info["failed_attempts"]
    assert attempt["severity"] == "fatal" and attempt["kind"] == "jobpack"
    assert attempt["reason"] == (
        "WorkerStartError: the worker 'worker.sh' could not be started (exit code 127 of /bin/sh)"
    )
    texts = [e[2] for e in client.events(name)]
    assert any(t.startswith("FATAL: [map:0] WorkerStartError: ") for t in texts), texts
    assert not any("Sleeping" in t for t in texts)


def test_framing_error_shows_the_parse_error(client) -> None:
    """jobinfo and the events give the parse error, not "WorkerExit ... code 0"."""
    body = (
        '#!/bin/sh\nsend() { printf \'%s %d %s\\n\' "$1" "${#2}" "$2"; }\n'
        'send WORKER "{\\"version\\":\\"1.1\\",\\"pid\\":$$}"; read -r reply\n'
        "echo 'this_is_not_a_message'\nexit 0\n"
    )
    client.post("save_settings", {"max_failure_rate": "1"})
    reply = submit_reply(client, make_pack(one_stage(), files={"worker.sh": body}))
    name = reply[1]
    assert client.wait(name, timeout=60)[0] == "dead"
    info = client.get("/disco/ctrl/jobinfo?name=" + name)
    reason = (
        "ProtocolError: Could not parse worker event: invalid_type: the worker wrote output "
        "that is not a protocol message (8.2)"
    )
    assert [a["reason"] for a in info["failed_attempts"]] == [reason, reason]
    assert [a["kind"] for a in info["failed_attempts"]] == ["protocol", "protocol"]
    texts = [e[2] for e in client.events(name)]
    assert sum(t.startswith("WARNING: [map:0] " + reason) for t in texts) == 2, texts
    assert "WARNING: [map:0] Could not parse worker event: invalid_type" in texts
    # the job's error says the same
    with pytest.raises(JobError) as error:
        Disco(client.url).wait(name, timeout=10)
    assert error.value.exc_type == "ProtocolError"
