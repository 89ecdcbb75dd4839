"""Standard job functions of the classic worker (library.md section 8).

The interface stubs (``map``, ``partition``, ``combiner``, ``reduce``, ``reduce2``,
``init``, ``notifier``) only document contracts.  They are exported as in 0.5, but the
classic worker must not inject them into job functions (21.11): it skips ``STUB_NAMES``.
"""

from __future__ import annotations

import re  # noqa: F401 - 0.5 exported it through the star import
from collections.abc import Iterable, Iterator
from typing import Any

from disco.compat import (  # noqa: F401 - 0.5 names visible through this module
    bytes_to_str,
    persistent_hash,
    pickle_dumps,
    pickle_loads,
    sort_cmd,
    str_to_bytes,
)
from disco.error import DataError  # noqa: F401
from disco.worker.classic.partitioner import fast_default_partition as _fast_default_partition
from disco.worker.task_io import *  # noqa: F403
from disco.worker.task_io import __all__ as _task_io_all
from disco.worker.task_io import (
    old_netstr_reader,
    task_input_stream,
    task_output_stream,
)

# Names that only document a contract; never inject them as globals (they would
# shadow the builtins ``map`` and ``reduce``).
STUB_NAMES = frozenset(
    (
        "map",
        "partition",
        "combiner",
        "reduce",
        "reduce2",
        "init",
        "notifier",
        "input_stream",
        "output_stream",
    )
)


# -- 8.1 interface stubs ---------------------------------------------------------------------


def map(entry: Any, params: Any) -> Any:  # noqa: A001 - 0.5 documentation stub
    """Return an iterable of ``(key, value)`` pairs for one input entry."""


def partition(key: Any, nr_partitions: int, params: Any) -> Any:
    """Return an int in ``range(nr_partitions)``."""


def combiner(key: Any, value: Any, buffer: dict, done: bool, params: Any) -> Any:
    """Called per map output with ``done=False``; once more with ``done=True`` at the end."""


def reduce(input_stream: Any, output_stream: Any, params: Any) -> Any:
    """Iterate ``(k, v)`` from the input and call ``output_stream.add(k, v)``."""


def reduce2(input_stream: Any, params: Any) -> Any:
    """Return or yield ``(k, v)`` pairs."""


def init(input_iter: Any, params: Any) -> Any:
    """Deprecated task init hook."""


def notifier(urls: Any) -> Any:
    """Called by ``result_iterator`` with each URL (or replica list) opened."""


# -- 8.2 concrete functions ------------------------------------------------------------------


def default_partition(key: Any, nr_partitions: int, params: Any) -> int:
    """``persistent_hash(key) % nr_partitions``: deterministic for any key (21.2).

    (The classic worker's map loop does not call it per record: it uses
    ``disco.worker.classic.partitioner``, which gives the same numbers.)"""
    return _fast_default_partition(key, nr_partitions)


def make_range_partition(min_val: float, max_val: float) -> Any:
    """A partition function spreading ``int(key)`` linearly over ``[min_val, max_val]``."""

    def range_partition(key: Any, nr_partitions: int, params: Any = None) -> int:
        return int(round(float(int(key) - min_val) / (max_val - min_val) * (nr_partitions - 1)))

    return range_partition


def noop(*args: Any, **kwargs: Any) -> None:
    pass


def nop_map(entry: Any, params: Any) -> Iterator[Any]:
    yield entry


def nop_reduce(iter: Iterable[tuple[Any, Any]], out: Any, params: Any) -> None:
    for k, v in iter:
        out.add(k, v)


def sum_combiner(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    if not done:
        buf[key] = buf.get(key, 0) + value
        return None
    return buf.items()


def sum_reduce(iter: Iterable[tuple[Any, Any]], params: Any) -> Any:
    buf: dict[Any, Any] = {}
    for k, v in iter:
        buf[k] = buf.get(k, 0) + v
    return buf.items()


def map_line_reader(fd: Any, size: Any, url: str, params: Any) -> Iterator[Any]:
    """[Not in 0.5] alias: lines without their trailing newline."""
    for line in fd:
        yield line.rstrip(b"\r\n" if isinstance(line, bytes) else "\r\n")


netstr_reader = old_netstr_reader
map_input_stream = reduce_input_stream = task_input_stream
map_output_stream = reduce_output_stream = task_output_stream

__all__ = sorted(
    set(_task_io_all)
    | set(STUB_NAMES - {"input_stream", "output_stream"})
    | {
        "DataError",
        "bytes_to_str",
        "default_partition",
        "make_range_partition",
        "map_input_stream",
        "map_line_reader",
        "map_output_stream",
        "netstr_reader",
        "noop",
        "nop_map",
        "nop_reduce",
        "persistent_hash",
        "pickle_dumps",
        "pickle_loads",
        "re",
        "reduce_input_stream",
        "reduce_output_stream",
        "sort_cmd",
        "str_to_bytes",
        "sum_combiner",
        "sum_reduce",
    }
)
