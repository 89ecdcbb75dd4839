"""Job functions of the Dask backend tests, in an importable module so the task
processes load them by name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

WORDS = "the quick brown fox jumps over the lazy dog and the cat".split()


def word_inputs(n: int) -> list[str]:
    """``n`` raw:// inputs: input ``i`` holds the words with a suffix ``i % 3``."""
    return ["raw://" + " ".join("%s%d" % (w, i % 3) for w in WORDS) for i in range(n)]


def expected_counts(n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for i in range(n):
        for w in WORDS:
            key = "%s%d" % (w, i % 3)
            counts[key] = counts.get(key, 0) + 1
    return counts


def slow_word_map(line: str, params: Any) -> Iterator[tuple[str, int]]:
    """The word count map, taking ``params["delay"]`` seconds per input (so tasks overlap
    and a test can kill a node while they run)."""
    time.sleep(float(params["delay"]) if params else 0.0)
    for word in line.split():
        yield word, 1


def sum_reduce(iter: Any, params: Any) -> Iterator[tuple[str, int]]:
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)
