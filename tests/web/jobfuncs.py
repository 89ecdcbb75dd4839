"""Job functions of the web UI tests (shipped to the workers with the job)."""

from __future__ import annotations

from typing import Any


def word_map(line: str, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def count_reduce(iter: Any, params: Any) -> Any:
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)


def bad_map(line: str, params: Any) -> Any:
    if line == "boom":
        raise ValueError("no way to map %r" % line)
    yield line, 1


def chatty_map(line: str, params: Any) -> Any:
    """Runs for up to 2 minutes, printing a line (a MSG event) every 0.4 s."""
    import time

    for i in range(300):
        print("working on %s, step %d" % (line, i))
        time.sleep(0.4)
    yield line, 1
