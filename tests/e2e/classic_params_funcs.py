"""Job functions for ``test_classic_params.py``: one per classic parameter (library.md 10.1).

They live in an importable module so the task processes load them by name; the
names injected by the worker (library.md 10.4) are marked ``noqa: F821``.
"""

from __future__ import annotations

import os
from typing import Any

FACTOR = 10  # read on the node through ``required_modules`` (injected as ``classic_params_funcs``)


def prefix_stream(stream: Any, size: Any, url: str, params: Any) -> Any:
    """A 4-argument input stream: prefixes every word with ``params.prefix``."""
    return (params.prefix + entry.replace(" ", " " + params.prefix) for entry in stream)


def split_reader(stream: Any, size: Any, url: str) -> Any:
    """A 3-argument ``map_reader``: one entry per word."""
    for entry in stream:
        yield from entry.split()


def skip_marker_init(entries: Any, params: Any) -> None:
    """``map_init``: records that it ran (each map task sees it once)."""
    params.initialised = True


def weighted_map(word: str, params: Any) -> Any:
    with open(os.path.join("lib", "weights.txt")) as f:  # a required_files entry
        weight = int(f.read())
    yield word.encode(), weight * (2 if getattr(params, "initialised", False) else 1)


def first_letter_partition(key: bytes, partitions: int, params: Any) -> int:
    return 0 if key[len(b"x-") :] < b"m" else partitions - 1


def doubling_output(stream: Any, partition: Any, url: str, params: Any) -> Any:
    """A map output stream after ``disco_output_stream``: doubles every value."""

    class Doubling:
        def add(self, key: Any, value: Any) -> None:
            stream.add(key, value * 2)

    return Doubling()


def plus_one_stream(stream: Any, size: Any, url: str, params: Any) -> Any:
    """A reduce input stream after ``chain_reader``: adds one to every value."""
    return ((key, value + 1) for key, value in stream)


def counting_reduce_init(entries: Any, params: Any) -> None:
    params.reduce_initialised = True


def summing_reduce(entries: Any, out: Any, params: Any) -> None:
    from disco.util import kvgroup

    factor = classic_params_funcs.FACTOR  # noqa: F821 - from required_modules
    assert params.reduce_initialised
    for key, values in kvgroup(entries):
        out.add(key.decode(), sum(values) * factor)
    out.add("partition", this_partition())  # noqa: F821


def timed_map(entry: str, params: Any) -> Any:
    """Sleeps a little and yields ``(entry, (start, end))``."""
    import time

    start = time.time()
    time.sleep(0.2)
    yield entry, (start, time.time())


def passing_map(entry: Any, params: Any) -> Any:
    yield entry, 1


def pid_map(entry: str, params: Any) -> Any:
    """Yields ``(entry, <the worker's pid>)``."""
    import os

    yield entry, os.getpid()
