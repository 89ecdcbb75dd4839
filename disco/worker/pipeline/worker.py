"""The pipeline worker (library.md 11): a job is a list of stages, each with a grouping.

Client side: ``Worker.jobdict`` checks the ``pipeline`` parameter (11.2: two- or
three-element tuples, known groupings, unique stage names) and writes a version 2
jobdict (master-api.md 6.3).  Node side: ``Worker.run`` picks the ``Stage`` named by
the task and runs it (``disco.worker.pipeline.runstage``).

    from disco.core import Job
    from disco.worker.pipeline.worker import Stage, Worker

    class WordCount(Job):
        worker = Worker()
        pipeline = [("split", Stage("map", process=map_words)),
                    ("group_label", Stage("reduce", process=sum_words, combine=True))]
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

from disco import JOBPACK_VERSION2
from disco.error import DiscoError
from disco.worker import Input, Params, SerialInput, input_settings
from disco.worker import Worker as BaseWorker
from disco.worker.pipeline.stage import DiscoTask, Stage, TaskInfo, input_hook

__all__ = [
    "JOBPACK_VERSION2",
    "DiscoTask",
    "Params",
    "SerialInput",
    "Stage",
    "TaskInfo",
    "Worker",
    "input_hook",
]

GROUPINGS = frozenset({"split", "group_label", "group_node", "group_all", "group_node_label"})


def client_version() -> str:
    return "%d.%d" % sys.version_info[:2]


def parse_pipeline(pipeline: Any) -> list[tuple[str, Stage, bool]]:
    """``(grouping, stage, concurrent)`` for each entry of a ``pipeline`` parameter.

    Raises ``DiscoError`` for an entry that is not a 2- or 3-tuple (``Bad Stage``), an
    unknown grouping (``Unknown grouping``) and a stage name used twice (``Repeated
    stage``); also for a stage that is not a ``Stage`` or has no usable name.
    """
    if pipeline is None or isinstance(pipeline, (str, bytes)) or not hasattr(pipeline, "__iter__"):
        raise DiscoError(
            "Bad pipeline %r: expected a list of (grouping, Stage) tuples" % (pipeline,)
        )
    parsed: list[tuple[str, Stage, bool]] = []
    seen: set[str] = set()
    for entry in pipeline:
        if not isinstance(entry, (tuple, list)) or len(entry) not in (2, 3):
            raise DiscoError(
                "Bad Stage %r: expected (grouping, Stage) or (grouping, Stage, concurrent)"
                % (entry,)
            )
        grouping, stage = entry[0], entry[1]
        concurrent = bool(entry[2]) if len(entry) == 3 else False
        if grouping not in GROUPINGS:
            raise DiscoError(
                "Unknown grouping %r in %r: use one of %s"
                % (grouping, entry, ", ".join(sorted(GROUPINGS)))
            )
        name = getattr(stage, "name", None)
        if not isinstance(name, str):
            raise DiscoError("Bad Stage %r: not a disco.worker.pipeline.worker.Stage" % (stage,))
        if not name or name == "input":
            raise DiscoError("Bad Stage name %r: stage names are non-empty and not 'input'" % name)
        if name in seen:
            raise DiscoError("Repeated stage %r: stage names must be unique" % name)
        seen.add(name)
        parsed.append((grouping, stage, concurrent))
    return parsed


def job_inputs(job_input: Any, settings: Any = None) -> list[list[Any]]:
    """The jobdict ``inputs`` rows ``[0, 0, [url, ...]]`` (11.2, fixed as 21.6 says).

    ``dir://`` inputs are passed on whole: the master reads their index and groups their
    labels (11.3); ``tag://`` inputs are expanded into their blobs' replica lists.
    """
    from disco import util

    if not util.isiterable(job_input):
        raise DiscoError(
            "Job 'input' is not a list of input locations, "
            "or a list of such lists: %s" % (job_input,)
        )
    kwargs = {"settings": settings} if settings is not None else {}
    rows = []
    for inp in util.inputlist(job_input, label=False, **kwargs):
        urls = [inp] if isinstance(inp, str) else list(util.flatten(inp))
        rows.append([0, 0, urls])
    return rows


class Worker(BaseWorker):
    """Runs the stages of a ``pipeline`` (library.md 11.2)."""

    jobpack_version = JOBPACK_VERSION2
    group_ops = set(GROUPINGS)

    def defaults(self) -> dict[str, Any]:
        defaults = super().defaults()
        defaults.update({"pipeline": [], "sort_buffer_size": "10%", "version": client_version()})
        return defaults

    # -- client side ----------------------------------------------------------------------
    def jobdict(self, job: Any, **jobargs: Any) -> dict[str, Any]:
        jobdict = super().jobdict(job, **jobargs)
        stages = parse_pipeline(self.getitem("pipeline", job, jobargs))
        jobdict.update(
            {
                "worker": self.bin,
                "pipeline": [[stage.name, grouping, conc] for grouping, stage, conc in stages],
                "inputs": job_inputs(self.getitem("input", job, jobargs, []), input_settings(job)),
            }
        )
        return jobdict

    def get_modules(self, job: Any, **jobargs: Any) -> list[Any]:
        """Modules used by the job's functions, the stage functions included."""
        from disco import job as _job

        functions = _job.job_functions(self, job, jobargs)
        pipeline = self.getitem("pipeline", job, jobargs) or []
        for entry in pipeline:
            stage = entry[1] if isinstance(entry, (tuple, list)) and len(entry) > 1 else None
            if isinstance(stage, Stage):
                functions += [fn for fn in stage.functions() if not _is_disco(fn)]
        return _job.find_job_modules(functions, _job.job_module_path(job))

    # -- node side ------------------------------------------------------------------------
    def run(self, task: Any, job: Any, **jobargs: Any) -> None:

        self.resolve(task, job, jobargs)
        params = self.getitem("params", job, jobargs, Params())
        stages = parse_pipeline(self["pipeline"])
        names = [stage.name for _grouping, stage, _concurrent in stages]
        if task.stage not in names:
            raise DiscoError("The pipeline has no stage %r" % task.stage)
        stage = stages[names.index(task.stage)][1]
        _import_required(self.get("required_modules") or (), stage, params)
        stage.taskinfo = TaskInfo(task.jobname, task.host, task.stage, task.group, task.group_label)
        self.run_stage(task, stage, params)

    # -- the steps of a stage run (0.5's extension points, library.md 11.2) --------------
    def stage_run(self, task: Any, stage: Stage, params: Any) -> Any:
        """The ``StageRun`` of ``stage`` in ``task`` (one per task and stage: it owns the
        outputs that ``interface.output(label)`` opens)."""
        from disco.worker.pipeline.runstage import StageRun

        runs: dict[Any, Any] = self.__dict__.setdefault("_stage_runs", {})
        run = runs.get((id(task), stage.name))
        if run is None:
            names = [s.name for _grouping, s, _concurrent in parse_pipeline(self["pipeline"])]
            index = names.index(stage.name) if stage.name in names else 0
            input_chain = stage.input_chain or stage.default_input_chain(index)
            output_chain = stage.output_chain or list(stage.default_output_chain)
            run = StageRun(self, task, stage, params, input_chain, output_chain)
            runs[(id(task), stage.name)] = run
        return run

    def make_interface(self, task: Any, stage: Stage, params: Any) -> DiscoTask:
        """The ``interface`` given to the stage functions: ``interface.output(label)``."""
        return self.stage_run(task, stage, params).interface

    def labelexpand(
        self, task: Any, stage: Stage, input: Any, params: Any
    ) -> Iterator[tuple[Any, Input]]:
        """``(label, Input)`` pairs of one task input: an index (``dir://``) input gives
        its entries of the input's label (all of them for ``'all'``), sorted; any other
        input gives itself with its label."""
        return self.stage_run(task, stage, params).labelexpand(input)

    def prepare_input_map(self, task: Any, stage: Stage, params: Any) -> dict[Any, list[Input]]:
        """label -> the task's inputs of that label (``labelexpand`` of each input)."""
        input_map: dict[Any, list[Input]] = {}
        for inp in self.get_inputs():
            for label, item in self.labelexpand(task, stage, inp, params):
                input_map.setdefault(label, []).append(item)
        return input_map

    def sort(self, input: Iterable[tuple[Any, Any]], task: Any) -> Iterator[tuple[Any, Any]]:
        """``input``'s ``(key, value)`` records sorted by key on disk (``util.disk_sort``)."""
        from disco import util

        return util.disk_sort(
            self, input, task.path("sort.dl"), sort_buffer_size=self.get("sort_buffer_size", "10%")
        )

    def run_stage(self, task: Any, stage: Stage, params: Any) -> None:
        """``init``, ``process`` over the inputs in ``input_hook`` order, ``done``."""
        self.stage_run(task, stage, params).run()


def _is_disco(fn: Any) -> bool:
    module = getattr(fn, "__module__", None) or ""
    return module == "disco" or module.startswith("disco.")


def _import_required(modules: Iterable[Any], stage: Stage, params: Any) -> None:
    """Import the job's required modules and make them visible to the stage functions.

    0.5 imported them but did not globalize them into functions inside ``Stage`` objects
    (docs/decisions.md).
    """
    from disco.worker.classic.worker import _globalize, _import

    names: dict[str, Any] = {}
    for module in modules:
        name, path = module if isinstance(module, (tuple, list)) else (module, None)
        names[name.rsplit(".", 1)[-1]] = _import(name, path)
    if names:
        _globalize([stage.functions(), params], names, set())
