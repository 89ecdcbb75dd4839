"""The minimal worker behind ``disco.job.SimpleJob`` (library.md 3.2, 15).

Stage functions are ``fn(worker, task, **jobargs)`` and do their own I/O with
``worker.input(task)`` and ``worker.output(task, partition)``.  Unlike 0.5 (21.14) the
jobdict is a complete version 1 jobdict, and the shuffle stages the master adds after
``map`` are handled here.
"""

from __future__ import annotations

from typing import Any

from disco import JOBPACK_VERSION1
from disco.error import DiscoError
from disco.worker import BaseOutput, Output
from disco.worker import Worker as BaseWorker


class Worker(BaseWorker):
    """Runs ``getitem(task.stage)(worker, task, **jobargs)`` for ``map`` and ``reduce``."""

    jobpack_version = JOBPACK_VERSION1

    def jobdict(self, job: Any, **jobargs: Any) -> dict[str, Any]:
        from disco import util

        jobdict = super().jobdict(job, **jobargs)
        has_map = bool(self.getitem("map", job, jobargs))
        job_input = self.getitem("input", job, jobargs, [])
        if not util.isiterable(job_input):
            raise DiscoError(
                "Job 'input' is not a list of input locations, "
                "or a list of such lists: %s" % (job_input,)
            )
        settings = getattr(job, "settings", None)
        kwargs = {"settings": settings} if settings is not None else {}
        inputs = util.inputlist(job_input, label=None if has_map else False, **kwargs)
        jobdict.update(
            {
                "input": [list(i) if isinstance(i, tuple) else i for i in inputs],
                "map?": has_map,
                "reduce?": bool(self.getitem("reduce", job, jobargs)),
                "reduce_shuffle?": False,
                "nr_reduces": 1,
            }
        )
        return jobdict

    def output(self, task: Any, label: Any = None, partition: Any = None, **kwds: Any) -> Output:
        """The output for ``label`` (``partition`` is accepted as its 0.5 alias)."""
        return super().output(task, label if label is not None else partition, **kwds)

    def run(self, task: Any, job: Any, **jobargs: Any) -> None:
        import disco.worker

        disco.worker.active_task = task
        if task.stage in ("map_shuffle", "reduce_shuffle"):
            inputs = list(self.get_inputs())
            labelled = self.labelled_input_map(task, inputs)
            for label in sorted(labelled):
                path, _size = self.concat_input(task, label, labelled[label])
                self.outputs[label] = BaseOutput((path, "part", label))
            return
        self.getitem(task.stage, job, jobargs)(self, task, **jobargs)
