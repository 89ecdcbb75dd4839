"""Job functions for the worker tests, imported by name in the task processes."""

from __future__ import annotations

import builtins
import os
from typing import Any

from disco.error import DataError


def words_map(entry: Any, params: Any) -> Any:
    for word in entry.split():
        yield word, 1


def bytes_words_map(entry: Any, params: Any) -> Any:
    for word in entry.split():
        yield word.encode(), 1


def printing_map(entry: Any, params: Any) -> Any:
    import sys

    print("hello from map", entry)
    print("warning: to stderr", file=sys.stderr)
    sys.stdout.write("no newline")
    yield entry, 1


def failing_map(entry: Any, params: Any) -> Any:
    kind = entry
    if kind == "data":
        raise DataError("bad data", "raw://data")
    if kind == "os":
        raise OSError("disk on fire")
    if kind == "memory":
        raise MemoryError()
    raise ValueError("a bug in the job")
    yield


def injected_map(entry: Any, params: Any) -> Any:
    # Names of library.md 10.4, injected into this module's globals by the worker.
    yield "name", this_name()  # noqa: F821
    yield "host", this_host()  # noqa: F821
    yield "master", this_master()  # noqa: F821
    yield "partition", this_partition()  # noqa: F821
    yield "inputs", this_inputs()  # noqa: F821
    yield "task", Task.stage  # noqa: F821
    yield "map_is_builtin", map is builtins.map


def sorted_reduce(iter: Any, out: Any, params: Any) -> None:
    for key, value in iter:
        out.add(key, value)


def sum_reduce2(iter: Any, params: Any) -> Any:
    totals: dict[Any, int] = {}
    for key, value in iter:
        totals[key] = totals.get(key, 0) + value
    return sorted(totals.items())


def cwd_map(entry: Any, params: Any) -> Any:
    yield "cwd", os.getcwd()


def line_reader(fd: Any, size: Any, url: str, params: Any) -> Any:
    # raw:// gives a StringIO: one entry per comma-separated field
    yield from fd.read().split(",")


def skip_first_init(entries: Any, params: Any) -> None:
    next(entries)


def simple_map(self: Any, worker: Any, task: Any, **jobargs: Any) -> None:
    out = worker.output(task, partition=None).file
    for entry in worker.input(task, open=_raw_opener()):
        out.add(entry, task.stage)


def _raw_opener() -> Any:
    from disco.worker.task_io import StreamCombiner, task_input_stream

    return lambda url: StreamCombiner(url, [task_input_stream], None)
