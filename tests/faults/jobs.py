"""Job functions of the fault-injection suite (shipped to the workers from here)."""

from __future__ import annotations

import os
import time
from typing import Any


def big_map(line: str, params: Any) -> Any:
    """``raw://<name>:<n>``: n records of 1 KB each (random: they do not compress),
    keyed ``<name>-<i>``."""
    import base64

    name, _, count = line.partition(":")
    for i in range(int(count)):
        yield "%s-%d" % (name, i), base64.b64encode(os.urandom(750)).decode()


def count_reduce(iter: Any, params: Any) -> Any:
    from disco.util import kvgroup

    for key, values in kvgroup(sorted(iter)):
        yield key, sum(1 for _ in values)


def numbers_map(line: str, params: Any) -> Any:
    """``raw://<start>:<n>``: records ``(i, 1)`` for i in start..start+n-1; writes the
    worker's pid to ``params["pids"]`` (if given), then waits for ``params["go"]``."""
    start, _, count = line.partition(":")
    pids = params.get("pids") if isinstance(params, dict) else None
    if pids:
        with open(os.path.join(pids, "%d" % os.getpid()), "w") as f:
            f.write(line)
        deadline = time.time() + 60
        while not os.path.exists(params["go"]) and time.time() < deadline:
            time.sleep(0.02)
    for i in range(int(start), int(start) + int(count)):
        yield str(i), 1


def sum_reduce(iter: Any, params: Any) -> Any:
    from disco.util import kvgroup

    for key, values in kvgroup(sorted(iter)):
        yield key, sum(int(v) for v in values)


def numbers_answer(inputs: list[str]) -> list[tuple[str, int]]:
    """The exact answer of ``numbers_map`` + ``sum_reduce`` over ``raw://<start>:<count>``
    inputs: each number as a str key with how many inputs cover it, sorted."""
    counts: dict[str, int] = {}
    for inp in inputs:
        start, count = (int(x) for x in inp.split("://")[1].split(":"))
        for i in range(start, start + count):
            counts[str(i)] = counts.get(str(i), 0) + 1
    return sorted(counts.items())


def words_map(line: str, params: Any) -> Any:
    """``raw://w1,w2,...``: one ``(word, 1)`` per word."""
    for word in line.split(","):
        yield word, 1


def gated_count_reduce(iter: Any, params: Any) -> Any:
    """Counts the words, but first leaves ``<pid>`` in ``params["started"]`` and waits
    (at most 120 s) for the file ``params["go"]``: the test acts while reduces run."""
    from disco.util import kvgroup

    open(os.path.join(params["started"], "%d" % os.getpid()), "w").close()
    deadline = time.time() + 120
    while not os.path.exists(params["go"]) and time.time() < deadline:
        time.sleep(0.02)
    for key, values in kvgroup(sorted(iter)):
        yield key, sum(int(v) for v in values)
