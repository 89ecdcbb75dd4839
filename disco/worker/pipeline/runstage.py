"""Running one pipeline stage in a task (library.md 11.2, steps 1 to 4).

1. ``interface = DiscoTask(output=...)``: ``interface.output(label)`` opens (once) the
   task's output for that integer label through the stage's output chain.
2. ``state = init(interface, params)``.
3. The task's inputs are grouped by label (a ``dir://`` index is split into its entries,
   keeping those of the input's label, or all for ``"all"``); for each label that
   ``input_hook(state, labels)`` returns, ``process`` runs once per input, or once over
   every record of the label with ``combine`` (sorted by key with ``sort``).
4. ``done(interface, state)``.  The worker then reports the outputs (``Worker.end``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from disco.error import DiscoError
from disco.worker import Input, SerialInput, read_index
from disco.worker.pipeline.stage import DiscoTask, Stage
from disco.worker.task_io import StreamCombiner


def stream_opener(streams: list[Callable[..., Any]], params: Any) -> Callable[[str], Any]:
    """``open(url)`` applying ``streams`` to ``url`` (a ``StreamCombiner``)."""

    def open(url: str) -> StreamCombiner:
        return StreamCombiner(url, streams, params)

    return open


def labelled_inputs(task: Any, inputs: Iterable[Any]) -> dict[Any, list[Any]]:
    """label -> the inputs of that label, in order; index inputs become their entries.

    An entry is an ``IDedInput`` (replica failover through the master) or, for an entry
    of an index file, its URL.
    """
    labelled: dict[Any, list[Any]] = {}
    for inp in inputs:
        replicas = inp.replicas
        inp._fresh = replicas  # reading the input reuses this reply
        urls = [url for _rid, url in replicas]
        if not urls:
            continue
        if all(url.startswith("dir://") for url in urls):
            for label, url, _size in sorted(read_index(urls[0], task)):
                if inp.label == "all" or label == inp.label:
                    labelled.setdefault(label, []).append(url)
        else:
            labelled.setdefault(inp.label, []).append(inp)
    return labelled


class StageRun:
    """The state of one stage run in a task: its outputs and input opener."""

    def __init__(
        self,
        worker: Any,
        task: Any,
        stage: Stage,
        params: Any,
        input_chain: list[Callable[..., Any]],
        output_chain: list[Callable[..., Any]],
    ) -> None:
        self.worker = worker
        self.task = task
        self.stage = stage
        self.params = params
        self.open_input = stream_opener(input_chain, params)
        self.open_output = stream_opener(output_chain, params)
        self.writers: dict[int, Any] = {}
        self.interface = DiscoTask(output=self.output)

    def output(self, label: int = 0) -> Any:
        """The ``add(key, value)`` object of the output for ``label`` (same on each call)."""
        writer = self.writers.get(label)
        if writer is None:
            if label is None:
                label = 0
            if not isinstance(label, int) or isinstance(label, bool):
                raise DiscoError(
                    "interface.output(label): the label must be an integer, not %r" % (label,)
                )
            out = self.worker.output(self.task, label, open=self.open_output)
            writer = self.writers[label] = out.file.fds[-1]
        return writer

    def records(self, inputs: list[Any]) -> Iterator[Any]:
        """Every record of ``inputs``, one input after the other."""
        return iter(SerialInput(inputs, task=self.task, open=self.open_input))

    def combined(self, label: Any, inputs: list[Any]) -> Iterator[Any]:
        records = self.records(inputs)
        if not self.stage.sort:
            return records
        from disco import util

        path = self.task.path("sort-%s.dl" % label)
        sort_buffer_size = self.worker.get("sort_buffer_size", "10%")
        return util.disk_sort(self.worker, records, path, sort_buffer_size=sort_buffer_size)

    def process(self, state: Any, label: Any, inp: Any) -> None:
        result = self.stage.process(self.interface, state, label, inp)  # type: ignore[misc]
        if inspect.isgenerator(result):
            result.close()
            raise DiscoError(
                "Stage %r: process() is a generator and its records would be lost; "
                "write them with interface.output(label).add(key, value)" % self.stage.name
            )

    def run(self) -> None:
        stage = self.stage
        state = stage.init(self.interface, self.params) if stage.init else None
        if stage.process:
            labelled = labelled_inputs(self.task, self.worker.get_inputs())
            for label in stage.input_hook(state, list(labelled)):
                inputs = labelled.get(label, [])
                if stage.combine:
                    self.process(state, label, self.combined(label, inputs))
                else:
                    for inp in inputs:
                        self.process(state, label, Input(inp, task=self.task, open=self.open_input))
        if stage.done:
            stage.done(self.interface, state)
