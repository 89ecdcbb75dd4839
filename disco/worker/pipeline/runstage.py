"""Running one pipeline stage in a task (library.md 11.2, steps 1 to 4).

1. ``interface = DiscoTask(output=...)``: ``interface.output(label)`` opens (once) the
   task's output for that integer label through the stage's output chain.
2. ``state = init(interface, params)``.
3. The task's inputs are grouped by label (a ``dir://`` index is split into its entries,
   keeping those of the input's label, or all for ``"all"``); for each label that
   ``input_hook(state, labels)`` returns, ``process`` runs once per input, or once over
   every record of the label with ``combine`` (sorted by key with ``sort``).
4. ``done(interface, state)``.  The worker then reports the outputs (``Worker.end``).

With ``combine``, a label's records are freed when the next label's are about to be read;
the last label's are left to the task process's exit (``taskrun.leave_to_exit``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from disco.error import DiscoError
from disco.worker import Input, SerialInput, read_index
from disco.worker.pipeline.stage import DiscoTask, Stage
from disco.worker.task_io import StreamCombiner
from disco.worker.taskrun import leave_to_exit


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

    def labelexpand(self, input: Any) -> Iterator[tuple[Any, Input]]:
        """``(label, Input)`` for one task input; an index input gives one per entry."""
        for label, items in labelled_inputs(self.task, [input]).items():
            for item in items:
                yield label, Input(item, task=self.task, open=self.open_input)

    def combined(self, inputs: list[Any]) -> Iterator[Any]:
        """Every record of ``inputs`` in turn, sorted by key (``Worker.sort``) with ``sort``."""
        records: Iterator[Any] = iter(SerialInput(inputs, task=self.task, open=self.open_input))
        if self.stage.sort:
            return self.worker.sort(records, self.task)
        return records

    def process(self, interface: Any, state: Any, label: Any, inp: Any) -> None:
        result = self.stage.process(interface, state, label, inp)  # type: ignore[misc]
        if inspect.isgenerator(result):
            result.close()
            raise DiscoError(
                "Stage %r: process() is a generator and its records would be lost; "
                "write them with interface.output(label).add(key, value)" % self.stage.name
            )

    def run(self) -> None:
        """Steps 1 to 4, through the worker's methods (a ``Worker`` subclass may override
        ``make_interface``, ``prepare_input_map``, ``labelexpand`` and ``sort``)."""
        worker, task, stage, params = self.worker, self.task, self.stage, self.params
        interface = worker.make_interface(task, stage, params)
        state = stage.init(interface, params) if stage.init else None
        if stage.process:
            input_map = worker.prepare_input_map(task, stage, params)
            spent = None
            for label in stage.input_hook(state, list(input_map)):
                inputs = input_map.get(label, [])
                if stage.combine:
                    spent = None  # the previous label's records freed before the next
                    spent = self.combined(inputs)
                    self.process(interface, state, label, spent)
                else:
                    for inp in inputs:
                        self.process(interface, state, label, inp)
            if spent is not None:
                # the last label's records (all of a sort task's, sorted: 0.1 s of CPU
                # to free 500 k of them) are freed by the process's exit, not now
                leave_to_exit(spent)
                spent = None
        if stage.done:
            stage.done(interface, state)
