"""Seed parameters that ``test_disco_e2e.py`` does not reach (library.md 2): ``results``
given ``Job`` objects, ``result_iterator``'s ``input_stream``/``params``/``ddfs``,
``events`` from the last offset, and a client that talks to the master through the
front proxy (master-api.md 2.8)."""

from __future__ import annotations

import time
from typing import Any

from disco.core import Disco, result_iterator
from disco.job import Job
from disco.worker import Params
from disco.worker.task_io import chain_reader, task_input_stream
from tests.client.shjobs import BLOCKING_WORKER, jobpack


def upper_map(line: str, params: Any) -> Any:
    yield line.upper(), len(line)


def tagging_stream(stream: Any, size: Any, url: str, params: Any) -> Any:
    """An input stream that sees ``params``: tags every record."""
    return ((params.tag, key, value) for key, value in stream)


def test_results_of_job_objects(master) -> None:
    disco: Disco = master.disco
    done = Job(name="Done", master=master.url).run(input=["raw://ab"], map=upper_map)
    done.wait(poll_interval=0.1)
    running = disco.submit(jobpack(BLOCKING_WORKER, map=True))
    status, results = disco.results(done)  # a Job, not a name
    assert status == "ready" and results == done.wait()
    others, active = disco.results([done, running], timeout=10)
    assert [name for name, _ in others] == [done.name]
    assert active == [(running, ("active", []))]
    assert done.results() == ("ready", results)  # Job's proxy method
    disco.kill(running)


def test_result_iterator_input_stream_params_and_ddfs(master) -> None:
    job = Job(name="Iter", master=master.url).run(input=["raw://ab", "raw://c"], map=upper_map)
    results = job.wait(poll_interval=0.1)
    records = result_iterator(
        results,
        reader=None,
        input_stream=(task_input_stream, chain_reader, tagging_stream),
        params=Params(tag="t"),
        ddfs=master.url,
    )
    assert sorted(records) == [("t", "AB", 2), ("t", "C", 1)]
    opened: list[Any] = []
    assert sorted(result_iterator(results, notifier=opened.append)) == [("AB", 2), ("C", 1)]
    assert opened and all(isinstance(u, (str, list, tuple)) for u in opened)


def test_events_from_the_end_are_empty_and_resume(master) -> None:
    disco: Disco = master.disco
    job = Job(name="Ev", master=master.url).run(input=["raw://x"], map=upper_map)
    job.wait(poll_interval=0.1)
    events = list(disco.events(job.name))
    last = events[-1][0]
    assert list(disco.events(job.name, offset=last)) == []  # nothing new: nothing at all
    assert list(job.events(offset=events[0][0])) == events[1:]


def test_a_client_behind_the_front_proxy(master) -> None:
    """``proxy``: every master request goes to ``<proxy>/<path>`` (no dot in the master
    URL); the master strips nothing there and answers as usual."""
    disco = Disco("http://mastername:1", proxy=master.url)
    assert disco.master_version() == master.disco.master_version()
    name = disco.submit(jobpack(inputs=["raw://p"], prefix="Proxied"))
    assert disco.wait(name, poll_interval=0.1) == [["raw://p"]]
    assert disco.jobinfo(name)["active"] == "ready"
    assert [e[2] for _, e in disco.events(name)][-1].startswith("READY")


def test_results_long_poll_returns_when_the_job_ends(master) -> None:
    """M 2.4: ``get_results`` blocks only until an active job ends, not for ``timeout``."""
    job = Job(name="LongPoll", master=master.url).run(input=["raw://x"], map=upper_map)
    start = time.monotonic()
    status, _ = master.disco.results(job, timeout=60_000)
    assert status == "ready" and time.monotonic() - start < 30
