"""Failures a user can act on (issue 5, "Failures"): one test per class of failure.

Each test runs a real job on a real master whose task fails in one way, and checks what
the user gets: the ``JobError`` raised by ``Job.wait()`` (message, attributes), the
same text in the job's events, and the failed attempts in ``jobinfo``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any

import pytest

from disco.core import Disco
from disco.error import JobError
from disco.job import Job
from disco.settings import DiscoSettings

pytestmark = pytest.mark.timeout(60)


# -- job functions (shipped to the workers from this module) ---------------------------------
def bad_map(line: str, params: Any) -> Any:
    if line == "boom":
        raise ValueError("no way to map %r" % line)
    yield line, 1


def word_map(line: str, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def bad_reduce(iter: Any, params: Any) -> Any:
    for key, value in iter:
        if key == "boom":
            raise KeyError("reduce cannot handle %s" % key)
        yield key, value


def exiting_map(line: str, params: Any) -> Any:
    print("leaving now")
    sys.exit(3)
    yield line, 1


def segfault_map(line: str, params: Any) -> Any:
    import ctypes

    print("about to read address 0")
    sys.stdout.flush()
    ctypes.string_at(0)
    yield line, 1


def self_killing_map(line: str, params: Any) -> Any:
    print("sending myself SIGTERM")
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGTERM)
    yield line, 1


def hungry_map(line: str, params: Any) -> Any:
    blob = bytearray(400 << 20)  # 400 MB: over the job's 200 MB limit
    yield line, len(blob)


def sleeping_map(line: str, params: Any) -> Any:
    import time

    time.sleep(30)
    yield line, 1


def forking_hungry_map(line: str, params: Any) -> Any:
    import subprocess

    # Two helper processes of 150 MB each: under the 200 MB limit each, over it together.
    code = "import time; b = b'x' * (150 << 20); print('ready', flush=True); time.sleep(60)"
    print("starting helpers")
    helpers = [
        subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE) for _ in range(2)
    ]
    for helper in helpers:
        helper.stdout.readline()
    for helper in helpers:
        helper.wait()
    yield line, 1


def unpicklable_map(line: str, params: Any) -> Any:
    yield line, (i for i in range(3))


class OnlyOnTheClient:
    """Pickles as an import of a module that exists nowhere (e.g. a C extension the
    nodes lack): loading the job on the node fails."""

    def __reduce__(self) -> Any:
        import importlib

        return (importlib.import_module, ("module_missing_on_the_nodes",))


# -- helpers -----------------------------------------------------------------------------------
@pytest.fixture(params=["zygote", "exec"])
def start(request, master) -> Any:
    """The master, with workers forked from the zygote or started by exec (both paths)."""
    master.server.backend.use_zygote = request.param == "zygote"
    return master


def max_failures(master: Any, n: int) -> None:
    master.disco.request("/disco/ctrl/save_settings", json.dumps({"max_failure_rate": n}))


def failed_job(master: Any, **jobargs: Any) -> tuple[JobError, Job]:
    settings = jobargs.pop("settings", None)
    job = Job(master=master.url, settings=settings).run(**jobargs)
    with pytest.raises(JobError) as info:
        job.wait(poll_interval=0.1, timeout=40)
    return info.value, job


def event_texts(master: Any, job: Job) -> list[str]:
    return [event[2] for _offset, event in Disco(master.url).events(job.name)]


def assert_in_events(master: Any, job: Job, error: JobError) -> None:
    """The report in the JobError is the text of the task's failure event."""
    texts = event_texts(master, job)
    label = "[%s:%d] " % (error.stage, error.taskid)
    assert any(
        t in ("FATAL: " + label + error.message, "WARNING: " + label + error.message) for t in texts
    ), texts


# -- the failure classes ------------------------------------------------------------------------
def test_exception_in_map(master) -> None:
    error, job = failed_job(master, input=["raw://fine", "raw://boom"], map=bad_map)
    assert error.message.startswith("ValueError: no way to map 'boom'\n")
    assert str(error).startswith("ValueError: no way to map 'boom'\n")
    assert (error.exc_type, error.exc_message) == ("ValueError", "no way to map 'boom'")
    assert (error.stage, error.taskid, error.host) == ("map", 1, "localhost")
    assert error.input == "raw://boom" and error.attempts == 1 and error.kind == "exception"
    # the remote traceback is the job's code, down to the raising line
    assert error.traceback.startswith("Traceback (most recent call last):\n")
    assert 'in bad_map\n    raise ValueError("no way to map %r" % line)\n' in error.traceback
    assert "disco/worker" not in error.traceback  # Disco's own frames are left out
    assert "in map task 1 on localhost (attempt 1), reading raw://boom" in error.message
    assert_in_events(master, job, error)
    assert job.name in str(error)


def test_exception_in_reduce(master) -> None:
    error, job = failed_job(master, input=["raw://a boom b"], map=word_map, reduce=bad_reduce)
    assert error.message.startswith("KeyError: 'reduce cannot handle boom'\n")
    assert error.stage == "reduce" and error.exc_type == "KeyError"
    assert "in bad_reduce\n" in error.traceback
    assert error.input and error.input.startswith("disco://localhost/")  # a map output
    assert_in_events(master, job, error)


def test_sys_exit_in_a_task(master) -> None:
    error, job = failed_job(master, input=["raw://x"], map=exiting_map)
    assert error.message.startswith("SystemExit: sys.exit(3) was called by the job's code\n")
    assert error.kind == "exit" and "in exiting_map\n    sys.exit(3)" in error.traceback
    assert "MSG: [map:0] leaving now" in event_texts(master, job)
    assert_in_events(master, job, error)


def test_segfault(start) -> None:
    max_failures(start, 0)  # a crash is retried (8.8); no retry here
    error, job = failed_job(start, input=["raw://x"], map=segfault_map)
    assert error.message.startswith(
        "WorkerCrash: the worker process died of signal 11 (SIGSEGV, a segmentation fault)\n"
    )
    assert error.kind == "segfault" and error.input == "raw://x"
    # the Python stack at the crash (faulthandler), and the worker's last output
    assert "Fatal Python error: Segmentation fault" in error.traceback
    assert "in segfault_map" in error.traceback
    assert "Last output of the worker:\n" in error.message
    assert "about to read address 0" in error.message.split("Last output of the worker:")[1]
    assert "WARNING: [map:0] Worker crashed! (exit code: 139)" in event_texts(start, job)
    assert_in_events(start, job, error)


def test_task_killed_by_a_signal(start) -> None:
    max_failures(start, 0)
    error, job = failed_job(start, input=["raw://x"], map=self_killing_map)
    assert error.message.startswith(
        "WorkerKilled: the worker process was killed by signal 15 (SIGTERM)\n"
    )
    assert error.kind == "signal" and error.exc_type == "WorkerKilled"
    assert "sending myself SIGTERM" in error.message
    assert_in_events(start, job, error)


def test_task_over_its_memory_limit_is_retried_then_fails(cluster) -> None:
    max_failures(cluster, 1)  # the first failure is retried (10.3), the second kills
    settings = DiscoSettings(DISCO_WORKER_MAX_MEM="200M")
    error, job = failed_job(cluster, input=["raw://x"], map=hungry_map, settings=settings)
    assert error.message.startswith(
        "MemoryError: the task exceeded 200 MB, its memory limit (DISCO_WORKER_MAX_MEM=200M)\n"
    )
    assert error.kind == "memory" and error.attempts == 2
    assert "in hungry_map\n    blob = bytearray(400 << 20)" in error.traceback
    # every attempt is visible: in jobinfo and in the events, each with its node
    attempts = job.jobinfo()["failed_attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2]
    assert [a["task"] for a in attempts] == ["map:0", "map:0"]
    hosts = [a["host"] for a in attempts]
    assert hosts[0] != hosts[1]  # the retry avoids the node where the task failed
    assert all(a["reason"].startswith("MemoryError: the task exceeded 200 MB") for a in attempts)
    texts = event_texts(cluster, job)
    assert 'Task map:0 failed on "%s", 1th failures so far.' % hosts[0] in "\n".join(texts)
    assert sum("exceeded 200 MB" in t and t.startswith("WARNING: [map:0]") for t in texts) == 2
    assert any("(attempt 2)" in t for t in texts)
    assert_in_events(cluster, job, error)


def test_process_group_over_the_memory_limit_is_stopped(start) -> None:
    max_failures(start, 0)
    settings = DiscoSettings(DISCO_WORKER_MAX_MEM="200M")
    error, job = failed_job(start, input=["raw://x"], map=forking_hungry_map, settings=settings)
    assert error.message.startswith(
        "MemoryError: the task exceeded 200 MB, its memory limit (DISCO_WORKER_MAX_MEM=200M): "
        "its processes used "
    )
    assert "MB and were stopped\n" in error.message
    assert error.kind == "memory" and error.input == "raw://x"
    assert "starting helpers" in error.message  # the last output of the task
    assert_in_events(start, job, error)


def test_output_that_cannot_be_serialized(master) -> None:
    error, job = failed_job(master, input=["raw://x"], map=unpicklable_map)
    assert error.message.startswith(
        "OutputError: a record yielded by map cannot be serialized: "
        "TypeError: cannot pickle 'generator' object (key 'x', value <generator object"
    )
    assert error.kind == "output" and "in unpicklable_map" not in error.message.split("\n")[0]
    assert_in_events(master, job, error)


def test_input_that_cannot_be_read(master) -> None:
    max_failures(master, 0)
    url = "%s/disco/no/such/file" % master.url
    error, job = failed_job(master, input=[url], map=word_map)
    assert error.exc_type == "DataError" and error.kind == "input"
    assert error.input == url
    assert error.exc_message.startswith(
        "Unable to access resource (%s): Exhausted all available replicas, last error was: " % url
    )
    assert "404" in error.exc_message
    assert_in_events(master, job, error)


def test_python_version_mismatch(master) -> None:
    # The job pack records the client's Python; forge another one.
    error, job = failed_job(master, input=["raw://x"], map=word_map, version="2.7")
    here = "%d.%d" % sys.version_info[:2]
    assert error.message.startswith(
        "PythonVersionError: Python version mismatch: the job was packed with Python 2.7 "
        "but this node runs Python %s" % here
    )
    assert error.kind == "version" and error.attempts == 1
    assert_in_events(master, job, error)


def test_job_code_that_cannot_be_loaded_on_the_node(master) -> None:
    error, job = failed_job(master, input=["raw://x"], map=word_map, params=OnlyOnTheClient())
    assert error.message.startswith(
        "ModuleNotFoundError: No module named 'module_missing_on_the_nodes' "
        "(the job's code could not be loaded on node localhost; "
    )
    assert error.kind == "code" and "required_modules" in error.message
    assert_in_events(master, job, error)


def test_killed_job_keeps_the_05_message(master) -> None:
    from tests.conftest import poll_for

    job = Job(master=master.url).run(input=["raw://x"], map=sleeping_map)
    poll_for(lambda: job.jobinfo()["hosts"], 10, "the task to start")
    job.kill()
    with pytest.raises(JobError) as info:
        job.wait(poll_interval=0.1, timeout=20)
    assert str(info.value) == "Job %s failed: Status dead" % job.name
    assert info.value.kind == "killed"


def test_the_failure_survives_a_master_restart(tmp_path) -> None:
    from disco.embedded import EmbeddedMaster

    root = tmp_path / "disco"
    with EmbeddedMaster(root=root, retry_delay=0.0) as m:
        first, job = failed_job(m, input=["raw://boom"], map=bad_map)
        info = job.jobinfo()
    with EmbeddedMaster(root=root, retry_delay=0.0) as m:
        disco = Disco(m.url)
        again = disco.jobinfo(job.name)
        assert again["last_failure"] == info["last_failure"]
        assert again["failed_attempts"] == info["failed_attempts"]
        with pytest.raises(JobError) as restarted:
            disco.wait(job.name, poll_interval=0.1)
        assert str(restarted.value) == str(first)
        assert restarted.value.traceback == first.traceback


def test_job_chain_reports_the_failure_of_a_job(master) -> None:
    from disco.job import JobChain

    first, second = Job(master=master.url), Job(master=master.url)
    first.run(input=["raw://boom"], map=bad_map)
    chain = JobChain({first: ["raw://boom"], second: first})  # second never runs
    with pytest.raises(JobError) as info:
        chain.wait(poll_interval=0.1)
    assert info.value.job is first
    assert info.value.exc_type == "ValueError" and info.value.stage == "map"
