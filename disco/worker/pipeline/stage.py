"""``Stage``, ``TaskInfo`` and ``DiscoTask`` of the pipeline worker (library.md 11.1).

A ``Stage`` holds what one pipeline stage does on the nodes: ``init``, ``process`` and
``done`` functions, the input/output stream chains and the ``combine``/``sort`` flags.
The pipeline ``Worker`` (``disco.worker.pipeline.worker``) runs the stage whose name is
the task's stage.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Iterable
from typing import Any

from disco.worker.task_io import (
    chain_reader,
    disco_output_stream,
    task_input_stream,
    task_output_stream,
)

#: What a stage's task knows about itself (set as ``stage.taskinfo`` on the node).
TaskInfo = namedtuple("TaskInfo", ["jobname", "host", "stage", "group", "label"])

#: The ``interface`` argument of stage functions: ``interface.output(label)`` gives the
#: object with ``add(key, value)`` writing the task's output for that integer label.
DiscoTask = namedtuple("DiscoTask", ["output"])


def input_hook(state: Any, input_labels: Iterable[Any]) -> Iterable[Any]:
    """The default ``input_hook``: process the labels in the order they came."""
    return input_labels


class Stage:
    """One stage of a pipeline job.

    :param name: unique stage name (the task's ``stage`` on the nodes).
    :param init: ``init(interface, params)`` -> the task's ``state`` (optional).
    :param process: ``process(interface, state, label, inp)``, called per input, or per
        label with one iterator over all its inputs when ``combine`` is true.
    :param done: ``done(interface, state)``, called once after all inputs (optional).
    :param input_hook: ``input_hook(state, input_labels)`` -> the labels in the order to
        process them.
    :param input_chain: input stream functions; empty means the default for the stage's
        position (``pipeline_input_chain`` for the first stage, ``interior_input_chain``
        after it).
    :param output_chain: output stream functions; empty means ``default_output_chain``.
    :param combine: call ``process`` once per label with every ``(key, value)`` record of
        that label's inputs.
    :param sort: with ``combine``, sort that stream by its (bytes) keys on disk first.
    """

    pipeline_input_chain: list[Callable[..., Any]] = [task_input_stream]
    interior_input_chain: list[Callable[..., Any]] = [task_input_stream, chain_reader]
    default_output_chain: list[Callable[..., Any]] = [task_output_stream, disco_output_stream]

    def __init__(
        self,
        name: str = "",
        init: Callable[..., Any] | None = None,
        process: Callable[..., Any] | None = None,
        done: Callable[..., Any] | None = None,
        input_hook: Callable[..., Any] = input_hook,
        input_chain: list[Callable[..., Any]] | None = None,
        output_chain: list[Callable[..., Any]] | None = None,
        combine: bool = False,
        sort: bool = False,
    ) -> None:
        self.name = name
        self.init = init
        self.process = process
        self.done = done
        self.input_hook = input_hook
        self.input_chain = list(input_chain or [])
        self.output_chain = list(output_chain or [])
        self.combine = combine
        self.sort = sort
        self.taskinfo: TaskInfo | None = None

    def default_input_chain(self, pipe_index: int) -> list[Callable[..., Any]]:
        """The input chain of a stage at position ``pipe_index`` that names none."""
        if pipe_index == 0:
            return list(self.pipeline_input_chain)
        return list(self.interior_input_chain)

    def functions(self) -> list[Callable[..., Any]]:
        """Every function of the stage (for finding the modules a job needs)."""
        found = [self.init, self.process, self.done, self.input_hook]
        found += self.input_chain + self.output_chain
        return [fn for fn in found if fn is not None and callable(fn)]

    def __repr__(self) -> str:
        return "Stage(%r)" % self.name
