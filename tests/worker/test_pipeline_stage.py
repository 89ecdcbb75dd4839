"""Each ``Stage`` argument (library.md 11.1) and the run order of 11.2, in real jobs."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.error import JobError
from disco.util import parse_dir
from disco.worker import Params
from disco.worker.pipeline.worker import Stage, Worker
from disco.worker.task_io import plain_output_stream, task_input_stream, task_output_stream
from tests.worker import pipefuncs as f

pytestmark = pytest.mark.timeout(90)

LINES = ["raw://the cat sat on the mat", "raw://a cat and a dog", "raw://on and on"]


def expected_words() -> Counter[str]:
    return Counter(w for url in LINES for w in url[len("raw://") :].split())


def run(master: Any, pipeline: list[Any], inputs: list[str] = LINES, **jobargs: Any) -> Any:
    job = Job(master=master.url, worker=Worker()).run(input=inputs, pipeline=pipeline, **jobargs)
    return job


def results(job: Any) -> list[Any]:
    return sorted(result_iterator(job.wait(poll_interval=0.1)))


def messages(job: Any) -> list[str]:
    return [message for _offset, (_time, _host, message) in job.events()]


def test_init_process_done_share_state_and_input_hook_orders_labels(master: Any) -> None:
    pipeline = [
        ("split", Stage("hash", process=f.hash_words)),
        (
            "group_all",
            Stage(
                "count",
                init=f.init_state,
                process=f.count_into_state,
                done=f.done_with_state,
                input_hook=f.reversed_labels,
            ),
        ),
    ]
    got = dict(results(run(master, pipeline, params={"offset": 100})))
    # three split tasks each wrote labels among 0..2; group_all sees every entry, and
    # process runs per input entry in the order input_hook gives the labels
    labels = got["labels"]
    assert labels == sorted(labels, reverse=True) and set(labels) == {0, 1, 2}
    assert got["records"] == sum(expected_words().values()) + 100


def test_combine_calls_process_once_per_label(master: Any) -> None:
    pipeline = [
        ("split", Stage("map", process=f.hash_words)),
        ("group_label", Stage("reduce", process=f.sum_combined, combine=True)),
    ]
    job = run(master, pipeline)
    assert dict(results(job)) == dict(expected_words())
    # one reduce task per label (group_label), each with one output of its own label
    [(_stage, _p, _w, _r, done, _f)] = [r for r in job.jobinfo()["pipeline"] if r[0] == "reduce"]
    assert done == 3


def test_combine_with_sort_gives_keys_in_order(master: Any) -> None:
    pipeline = [
        ("split", Stage("map", process=f.bytes_words)),
        ("group_label", Stage("reduce", process=f.sum_sorted, combine=True, sort=True)),
    ]
    got = results(run(master, pipeline))
    assert dict(got) == {w.encode(): n for w, n in expected_words().items()}


def test_combined_records_freed_at_the_next_label_and_the_last_left_to_the_exit(
    master: Any,
) -> None:
    # runstage: with combine, a label's sorted records are freed when the next label's
    # are read; the last label's stay until the task process ends (taskrun.leave_to_exit)
    pipeline = [
        ("split", Stage("map", process=f.bytes_words)),
        (
            "group_all",
            Stage(
                "keep",
                init=f.init_kept,
                process=f.keep_one_record,
                done=f.done_with_references,
                combine=True,
                sort=True,
            ),
        ),
    ]
    got = dict(results(run(master, pipeline)))
    order, references = got["order"], got["references"]
    assert len(order) == 2 and set(references) == set(order)  # words of odd/even length
    # done() runs after every process(): only the last label's list still holds its record
    first, last = (references[label] for label in order)
    assert last == first + 1


def test_sort_without_combine_is_ignored(master: Any) -> None:
    pipeline = [
        ("split", Stage("map", process=f.map_words)),
        ("group_all", Stage("copy", process=f.copy_records, sort=True)),
    ]
    got = results(run(master, pipeline))
    assert Counter(w for w, _ in got) == expected_words()


def test_custom_input_chain(master: Any) -> None:
    pipeline = [
        (
            "split",
            Stage("map", process=f.map_words, input_chain=[task_input_stream, f.upper_reader]),
        )
    ]
    got = results(run(master, pipeline))
    assert Counter(w for w, _ in got) == Counter(
        {w.upper(): n for w, n in expected_words().items()}
    )


def test_custom_output_chain_writes_plain_text(master: Any) -> None:
    chain = [task_output_stream, plain_output_stream]
    job = run(
        master,
        [("group_all", Stage("map", process=f.map_words, output_chain=chain))],
        ["raw://x y"],
    )
    [index] = job.wait(poll_interval=0.1)
    [url] = parse_dir(index)
    path = os.path.join(master.root, "data", url.split("/disco/", 1)[1])
    with open(path, "rb") as fh:
        assert fh.read() == b"1 x 1 1\n1 y 1 1\n"


def test_init_and_done_without_process(master: Any) -> None:
    pipeline = [
        ("split", Stage("greet", init=f.only_init)),
        ("group_all", Stage("finish", done=f.only_done)),
    ]
    got = results(run(master, pipeline, ["raw://ignored"], params=Params(greeting="hi")))
    # the first stage's output is read by nobody: the second stage has no process
    assert got == [("done", None)]


def test_output_of_a_label_is_the_same_object(master: Any) -> None:
    got = results(run(master, [("split", Stage("s", init=f.same_writer))], ["raw://x"]))
    assert got == [("same", True)]


def test_taskinfo_is_set_on_the_stage(master: Any) -> None:
    job = run(master, [("group_all", f.ReportingStage("info"))], ["raw://x"])
    [(key, info)] = results(job)
    assert key == "taskinfo"
    assert info == (job.name, "localhost", "info", "0-", 0)


@pytest.mark.parametrize(
    "stage, text",
    [
        (Stage("s", init=f.bad_label), "the label must be an integer, not 'one'"),
        (Stage("s", process=f.generator_process), "process() is a generator"),
    ],
)
def test_mistakes_in_stage_functions_fail_the_job_clearly(
    master: Any, stage: Stage, text: str
) -> None:
    job = run(master, [("split", stage)], ["raw://x"])
    with pytest.raises(JobError):
        job.wait(poll_interval=0.1)
    assert any(text in m and m.startswith("FATAL") for m in messages(job))
