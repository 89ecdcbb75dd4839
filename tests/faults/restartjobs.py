"""Job functions of the master restart tests (shipped to the workers from this module).

Every input is ``raw://<n> <words>``.  A gated function appends one line to
``<dir>/runs/<name>`` each time it starts (so a test counts the runs of each task),
then waits until ``<dir>/go/<name>`` exists: the test decides when each task may end.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

WAIT = 120.0  # a gate never opened: the task ends anyway (the test fails on its result)


def _gate(folder: str, name: str) -> int:
    """Count this run, wait for the gate; returns how many runs came before this one."""
    runs = os.path.join(folder, "runs", name)
    try:
        with open(runs, encoding="ascii") as f:
            before = len(f.read().splitlines())
    except FileNotFoundError:
        before = 0
    with open(runs, "a", encoding="ascii") as f:
        f.write("%d\n" % os.getpid())
    deadline = time.monotonic() + WAIT
    while not os.path.exists(os.path.join(folder, "go", name)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return before


def gated_map(line: str, params: Any) -> Any:
    number, _, words = line.partition(" ")
    _gate(params["dir"], "map-%s" % number)
    for word in words.split():
        yield word, 1


def child_map(line: str, params: Any) -> Any:
    """Input 0 starts a child process in its session on its first run (it outlives the
    worker unless someone kills it); then it behaves like ``gated_map``."""
    number, _, words = line.partition(" ")
    folder = params["dir"]
    runs = os.path.join(folder, "runs", "map-%s" % number)
    if number == "0" and not os.path.exists(runs):
        child = subprocess.Popen(["sleep", "300"])
        with open(os.path.join(folder, "child.tmp"), "w", encoding="ascii") as f:
            f.write("%d\n" % child.pid)
        os.replace(os.path.join(folder, "child.tmp"), os.path.join(folder, "child"))
    _gate(folder, "map-%s" % number)
    for word in words.split():
        yield word, 1


def word_map(line: str, params: Any) -> Any:
    number, _, words = line.partition(" ")
    with open(os.path.join(params["dir"], "runs", "map-%s" % number), "a") as f:
        f.write("%d\n" % os.getpid())
    for word in words.split():
        yield word, 1


def gated_reduce(iter: Any, out: Any, params: Any) -> None:
    _gate(params["dir"], "reduce")
    totals: dict[str, int] = {}
    for word, count in iter:
        totals[word] = totals.get(word, 0) + int(count)
    for word in sorted(totals):
        out.add(word, totals[word])


# -- pipeline stages ---------------------------------------------------------------------
def folder_of(interface: Any, params: Any) -> str:
    return params["dir"]


def gated_words(interface: Any, folder: str, label: Any, inp: Any) -> None:
    for line in inp:
        if isinstance(line, bytes):
            line = line.decode()
        number, _, words = line.partition(" ")
        _gate(folder, "map-%s" % number)
        for word in words.split():
            interface.output(len(word) % 3).add(word, 1)


def sum_words(interface: Any, folder: str, label: Any, inp: Any) -> None:
    totals: dict[str, int] = {}
    for word, count in inp:
        totals[word] = totals.get(word, 0) + count
    out = interface.output(label)
    for word in sorted(totals):
        out.add(word, totals[word])
