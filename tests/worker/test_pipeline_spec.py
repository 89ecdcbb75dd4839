"""The pipeline job spec on the client (library.md 11.1, 11.2): jobdict and its errors."""

from __future__ import annotations

from typing import Any

import pytest

from disco import JOBPACK_VERSION2
from disco.core import Job, result_iterator
from disco.error import DiscoError, JobError
from disco.worker.pipeline.worker import (
    DiscoTask,
    Stage,
    TaskInfo,
    Worker,
    input_hook,
    parse_pipeline,
)
from disco.worker.task_io import (
    chain_reader,
    disco_output_stream,
    task_input_stream,
    task_output_stream,
)
from tests.worker import pipefuncs as f

MAP = Stage("map", process=f.map_words)
REDUCE = Stage("reduce", process=f.sum_combined, combine=True)


def jobdict(**jobargs: Any) -> dict[str, Any]:
    job = Job(master="http://127.0.0.1:1", worker=Worker())
    return job.worker.jobdict(job, **jobargs)


def test_stage_defaults() -> None:
    stage = Stage("s")
    assert (stage.init, stage.process, stage.done) == (None, None, None)
    assert stage.input_hook is input_hook and input_hook(None, [2, 1]) == [2, 1]
    assert stage.input_chain == [] and stage.output_chain == []
    assert (stage.combine, stage.sort) == (False, False)
    assert stage.default_input_chain(0) == [task_input_stream]
    assert stage.default_input_chain(1) == [task_input_stream, chain_reader]
    assert Stage.default_output_chain == [task_output_stream, disco_output_stream]
    assert TaskInfo._fields == ("jobname", "host", "stage", "group", "label")
    assert DiscoTask._fields == ("output",)


def test_jobdict_version_2_with_two_and_three_element_stages() -> None:
    assert Worker.jobpack_version == JOBPACK_VERSION2
    assert Worker.group_ops == {
        "split",
        "group_label",
        "group_node",
        "group_all",
        "group_node_label",
    }
    got = jobdict(
        name="Pipe",
        input=["raw://a", ["http://x/1", "http://y/1"], "dir://n/idx"],
        pipeline=[("split", MAP), ("group_label", REDUCE, True)],
    )
    assert got["prefix"] == "Pipe"
    assert got["worker"] == "bin/disco-worker"
    assert got["pipeline"] == [["map", "split", False], ["reduce", "group_label", True]]
    # 21.6: every input is a list of replicas; dir:// inputs go to the master whole
    assert got["inputs"] == [
        [0, 0, ["raw://a"]],
        [0, 0, ["http://x/1", "http://y/1"]],
        [0, 0, ["dir://n/idx"]],
    ]
    assert "input" not in got and "map?" not in got


def test_pipeline_as_job_attribute() -> None:
    class Attr(Job):
        Worker = Worker
        pipeline = [("group_all", Stage("only", process=f.nothing))]

    job = Attr(master="http://127.0.0.1:1")
    assert job.worker.jobdict(job)["pipeline"] == [["only", "group_all", False]]


@pytest.mark.parametrize(
    "pipeline, message",
    [
        ([("split",)], "Bad Stage"),
        ([("split", MAP, False, "extra")], "Bad Stage"),
        (["split"], "Bad Stage"),
        ([("split", "not a stage")], "Bad Stage"),
        ([("split", Stage(""))], "Bad Stage name"),
        ([("split", Stage("input"))], "Bad Stage name"),
        ([("shuffle", MAP)], "Unknown grouping"),
        ([("split", MAP), ("group_all", Stage("map"))], "Repeated stage"),
        ("split", "Bad pipeline"),
    ],
)
def test_bad_pipelines_raise_before_submitting(pipeline: Any, message: str) -> None:
    with pytest.raises(DiscoError, match=message):
        parse_pipeline(pipeline)
    with pytest.raises(DiscoError, match=message):
        jobdict(input=["raw://a"], pipeline=pipeline)


def test_bad_input_is_refused() -> None:
    with pytest.raises(DiscoError, match="not a list of input locations"):
        jobdict(input=5, pipeline=[("split", MAP)])


def test_bad_job_changes_nothing_and_master_keeps_serving(master: Any) -> None:
    with pytest.raises(DiscoError, match="Unknown grouping"):
        Job(master=master.url, worker=Worker()).run(input=["raw://a"], pipeline=[("x", MAP)])
    assert master.disco.joblist() == []
    job = Job(master=master.url, worker=Worker()).run(
        input=["raw://a b a"], pipeline=[("split", MAP), ("group_label", REDUCE)]
    )
    assert sorted(result_iterator(job.wait(poll_interval=0.1))) == [("a", 2), ("b", 1)]


def test_empty_pipeline_results_are_the_inputs(master: Any) -> None:
    job = Job(master=master.url, worker=Worker()).run(input=["raw://x", "raw://y"], pipeline=[])
    assert job.wait(poll_interval=0.1) == [["raw://x"], ["raw://y"]]


def test_stage_missing_from_pipeline_on_the_node_is_fatal(master: Any) -> None:
    """The job pack names stage "map" but the pickled pipeline (a jobarg) has another."""

    class Renamed(Worker):
        def jobdict(self, job: Any, **jobargs: Any) -> dict[str, Any]:
            d = super().jobdict(job, **jobargs)
            d["pipeline"] = [["elsewhere", "split", False]]
            return d

    job = Job(master=master.url, worker=Renamed()).run(input=["raw://a"], pipeline=[("split", MAP)])
    with pytest.raises(JobError):
        job.wait(poll_interval=0.1)
    messages = [message for _offset, (_time, _host, message) in job.events()]
    assert any("The pipeline has no stage 'elsewhere'" in m for m in messages)


def test_disco_test_testpipe_runs_the_pipeline_worker(master: Any) -> None:
    from disco.test import TestPipe

    job = TestPipe(master=master.url)
    assert isinstance(job.worker, Worker)
    job.run(input=["raw://b a b"], pipeline=[("split", MAP), ("group_all", REDUCE)])
    assert sorted(result_iterator(job.wait(poll_interval=0.1))) == [("a", 1), ("b", 2)]
