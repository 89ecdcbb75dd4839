"""``sort=True`` with the str keys every Python 3 map yields (issue 11.4).

Classic ``Job.run(..., sort=True)`` and pipeline ``Stage(..., combine=True, sort=True)``
sort str keys by their UTF-8 bytes (code-point order) and give them back as str; bytes
keys sort as before; any other key type fails the task at its first record with an
error naming the type and the way out.
"""

from __future__ import annotations

from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.error import JobError
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker

WORDS = "pear apple Zebra éclair apple banana ärger pear 🍐 apple"
INPUTS = ["raw://pear apple Zebra éclair apple", "raw://banana ärger pear 🍐 apple"]


def word_map(line: str, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def bytes_word_map(line: str, params: Any) -> Any:
    for word in line.split():
        yield word.encode("utf-8"), 1


def number_map(line: str, params: Any) -> Any:
    for i, _word in enumerate(line.split()):
        yield i, 1


def in_order_reduce(iter: Any, out: Any, params: Any) -> None:
    """Counts runs of equal keys as they arrive: right only if the input is sorted."""
    last, count = None, 0
    for key, value in iter:
        assert isinstance(key, (str, bytes)), key
        if key != last and last is not None:
            out.add(last, count)
            count = 0
        last, count = key, count + value
    if last is not None:
        out.add(last, count)


def combine_process(interface: Any, state: Any, label: Any, inp: Any) -> None:
    in_order_reduce(inp, interface.output(label), None)


def split_process(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for line in inp:
        for word in line.split():
            interface.output(0).add(word, 1)


def expected(keys: Any) -> list[tuple[Any, int]]:
    counts: dict[Any, int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())


def test_classic_sort_true_with_str_keys(master: Any) -> None:
    job = Job(master=master.url).run(input=INPUTS, map=word_map, reduce=in_order_reduce, sort=True)
    got = list(result_iterator(job.wait()))
    assert got == expected(WORDS.split())  # code-point order, str keys
    assert all(type(k) is str for k, _ in got)


def test_classic_sort_true_with_bytes_keys_as_before(master: Any) -> None:
    job = Job(master=master.url).run(
        input=INPUTS, map=bytes_word_map, reduce=in_order_reduce, sort=True
    )
    assert list(result_iterator(job.wait())) == expected(w.encode() for w in WORDS.split())


def test_classic_sort_true_refuses_int_keys_naming_type_and_fix(master: Any) -> None:
    job = Job(master=master.url)
    job.run(input=INPUTS, map=number_map, reduce=in_order_reduce, sort=True)
    with pytest.raises(JobError) as e:
        job.wait()
    text = str(e.value)
    assert "Keys must be bytes or str for external sort" in text and "not int" in text
    assert "zero-padded" in text


def test_pipeline_stage_sort_true_with_str_keys(master: Any) -> None:
    pipeline = [
        ("split", Stage("words", process=split_process)),
        ("group_label", Stage("count", process=combine_process, combine=True, sort=True)),
    ]
    job = Job(master=master.url, worker=PipelineWorker()).run(input=INPUTS, pipeline=pipeline)
    got = list(result_iterator(job.wait()))
    assert got == expected(WORDS.split()) and all(type(k) is str for k, _ in got)


def tuple_process(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for line in inp:
        interface.output(0).add((line, 1), 1)


def test_pipeline_stage_sort_true_refuses_tuple_keys(master: Any) -> None:
    pipeline = [
        ("split", Stage("pairs", process=tuple_process)),
        ("group_all", Stage("count", process=combine_process, combine=True, sort=True)),
    ]
    job = Job(master=master.url, worker=PipelineWorker()).run(input=INPUTS, pipeline=pipeline)
    with pytest.raises(JobError, match="must be bytes or str for external sort.*not tuple"):
        job.wait()
