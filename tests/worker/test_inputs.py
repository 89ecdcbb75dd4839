"""Input classes (library.md 9.3): replica failover, resume, serial/parallel/merged order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from disco.error import DataError
from disco.fileutils import Wait
from disco.task import Task
from disco.worker import InputIter, MergedInput, ParallelInput, SerialInput, local_path


def opener(data: dict[str, list[Any]], fail_after: dict[str, int] | None = None) -> Any:
    """URLs -> record lists; a URL in ``fail_after`` raises DataError after n records."""
    fail_after = fail_after or {}

    def open(url: str) -> Iterator[Any]:
        if url not in data:
            raise DataError("no such replica", url)

        def records() -> Iterator[Any]:
            for n, record in enumerate(data[url]):
                if url in fail_after and n == fail_after[url]:
                    raise DataError("connection dropped", url)
                yield record

        return records()

    return open


def test_failover_resumes_after_delivered_records() -> None:
    data = {"bad://x": [1, 2, 3, 4], "good://x": [1, 2, 3, 4]}
    for _ in range(10):  # replicas are tried in random order
        it = InputIter(["bad://x", "good://x"], open=opener(data, {"bad://x": 2}))
        assert list(it) == [1, 2, 3, 4]  # no record twice, none lost


def test_failover_to_a_good_replica() -> None:
    data = {"bad://x": [1, 2, 3], "good://x": [1, 2, 3]}
    for _ in range(10):  # replicas are tried in random order
        got = list(InputIter(["bad://x", "good://x"], open=opener(data, {"bad://x": 1})))
        assert got == [1, 2, 3]


def test_exhausted_replicas() -> None:
    with pytest.raises(DataError, match="Exhausted all available replicas.*last error"):
        list(InputIter(["m://1", "m://2"], open=opener({})))


def test_serial_parallel_merged() -> None:
    data = {"u://a": [1, 4, 7], "u://b": [2, 5], "u://c": [3, 6, 8, 9]}
    inputs = [["u://a"], "u://b", ["u://c"]]
    assert list(SerialInput(inputs, open=opener(data))) == [1, 4, 7, 2, 5, 3, 6, 8, 9]
    assert list(ParallelInput(inputs, open=opener(data))) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert list(MergedInput(inputs, open=opener(data))) == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_wait_is_retried_where_it_stopped() -> None:
    calls = {"n": 0}

    def open(url: str) -> Iterator[int]:
        def records() -> Iterator[int]:
            yield 1
            calls["n"] += 1
            if calls["n"] == 1:
                raise Wait(0)
            yield 2

        return records()

    # A Wait escaping a generator ends it; the input then reopens the replica and
    # skips the record it already delivered.
    assert list(SerialInput(["w://x"], open=open)) == [1, 2]


def test_local_path() -> None:
    task = Task(host="node1", disco_port=8989, disco_data="/d", ddfs_data="/f", jobname="J")
    assert local_path("disco://node1/disco/node1/ab/J/x", task) == "/d/node1/ab/J/x"
    assert local_path("dir://node1/disco/node1/ab/J/.disco/i", task) == "/d/node1/ab/J/.disco/i"
    assert local_path("disco://node1/ddfs/vol0/blob/x", task) == "/f/vol0/blob/x"
    assert local_path("http://node1:8989/disco/a", task) == "/d/a"
    assert local_path("http://node1:80/disco/a", task) is None
    assert local_path("disco://node2/disco/a", task) is None
    assert local_path("file:///tmp/x", task) == "/tmp/x"
    assert local_path("/tmp/y", task) == "/tmp/y"
    assert local_path("raw://hello", task) is None


# -- the one-replica fast path of InputIter (issue 13): records pass through a C iterator,
# the count of delivered records is read when the replica ends or fails ------------------


def test_one_replica_failing_midway_delivers_each_record_once_then_fails() -> None:
    data = {"bad://x": list(range(1000))}
    got: list[int] = []
    it = InputIter(["bad://x"], open=opener(data, {"bad://x": 600}))
    with pytest.raises(DataError, match="Exhausted all available replicas.*connection dropped"):
        for record in it.iterate():
            got.append(record)
    assert got == list(range(600)) and it.delivered == 600


def test_next_and_iteration_mix_without_loss_or_repeat() -> None:
    data = {"u://x": list(range(100))}
    it = InputIter(["u://x"], open=opener(data))
    first = [next(it), next(it)]
    rest = []
    for record in it.iterate():
        rest.append(record)
        if record == 50:
            break
    rest += list(it.iterate())  # a new iteration resumes after the last record delivered
    assert first + rest == list(range(100)) and it.delivered == 100
    it = InputIter(["u://x"], open=opener(data))
    rest = [next(it)]
    for record in it.iterate():
        rest.append(record)
        if record == 10:
            break
    rest += list(it)  # and next() goes on from there too
    assert rest == list(range(100)) and it.delivered == 100
    assert iter(it) is it  # 0.5's iterator protocol is unchanged


def test_wait_deep_in_a_replica_resumes_at_the_next_record() -> None:
    opened = {"n": 0}

    def open(url: str) -> Iterator[int]:
        opened["n"] += 1
        attempt = opened["n"]

        def records() -> Iterator[int]:
            for n in range(5000):
                if attempt == 1 and n == 3210:
                    raise Wait(0)
                yield n

        return records()

    assert list(SerialInput(["w://x"], open=open)) == list(range(5000))
    assert opened["n"] == 2
