"""Stage functions for the pipeline tests, imported by name in the task processes."""

from __future__ import annotations

import time
from typing import Any

from disco.worker.pipeline.worker import Stage

# -- a word count as a pipeline ------------------------------------------------------------


def map_words(interface: Any, state: Any, label: Any, inp: Any) -> None:
    out = interface.output(0)
    for line in inp:
        if isinstance(line, bytes):
            line = line.decode()
        for word in line.split():
            out.add(word, 1)


def hash_words(interface: Any, state: Any, label: Any, inp: Any) -> None:
    """Words to label ``len(word) % 3``, so several labels exist."""
    for line in inp:
        if isinstance(line, bytes):
            line = line.decode()
        for word in line.split():
            interface.output(len(word) % 3).add(word, 1)


def sum_combined(interface: Any, state: Any, label: Any, inp: Any) -> None:
    """``combine=True``: one call per label with every ``(word, count)`` of it."""
    totals: dict[Any, int] = {}
    for word, count in inp:
        totals[word] = totals.get(word, 0) + count
    out = interface.output(label)
    for word in sorted(totals):
        out.add(word, totals[word])


def sum_sorted(interface: Any, state: Any, label: Any, inp: Any) -> None:
    """``combine=True, sort=True``: the records arrive sorted by key."""
    from disco.util import kvgroup

    out = interface.output(label)
    keys = []
    for word, counts in kvgroup(inp):
        keys.append(word)
        out.add(word, sum(counts))
    if keys != sorted(keys):
        raise AssertionError("combined input of label %s is not sorted" % label)


def bytes_words(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for line in inp:
        for word in line.split():
            word = word if isinstance(word, bytes) else word.encode()
            interface.output(len(word) % 2).add(word, 1)


def copy_records(interface: Any, state: Any, label: Any, inp: Any) -> None:
    out = interface.output(label)
    for key, value in inp:
        out.add(key, value)


# -- init / done / state / input_hook ---------------------------------------------------------


def init_state(interface: Any, params: Any) -> dict[str, Any]:
    return {"labels": [], "records": 0, "offset": params["offset"]}


def count_into_state(interface: Any, state: Any, label: Any, inp: Any) -> None:
    state["labels"].append(label)
    for _record in inp:
        state["records"] += 1


def done_with_state(interface: Any, state: Any) -> None:
    interface.output(0).add("labels", state["labels"])
    interface.output(0).add("records", state["records"] + state["offset"])


def reversed_labels(state: Any, labels: Any) -> list[Any]:
    return sorted(labels, reverse=True)


def only_init(interface: Any, params: Any) -> None:
    interface.output(0).add("init", params.greeting)


def only_done(interface: Any, state: Any) -> None:
    interface.output(3).add("done", state)


def nothing(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for _record in inp:
        pass


def same_writer(interface: Any, params: Any) -> None:
    first, second = interface.output(1), interface.output(1)
    first.add("same", first is second)


def bad_label(interface: Any, params: Any) -> None:
    interface.output("one").add("k", "v")


def generator_process(interface: Any, state: Any, label: Any, inp: Any) -> Any:
    for record in inp:
        yield record, 1


def taskinfo_done(interface: Any, state: Any) -> None:
    from disco.worker import active_task

    interface.output(0).add("task", active_task.stage)


# -- grouping probes -------------------------------------------------------------------------


def spread(interface: Any, state: Any, label: Any, inp: Any) -> None:
    """First stage: each raw input ``host:tag`` writes ``(tag, host)`` to labels 0 and 1."""
    for entry in inp:
        _host, _, tag = entry.partition(":")
        for out_label in (0, 1):
            interface.output(out_label).add(tag, out_label)


def seen_init(interface: Any, params: Any) -> list[Any]:
    return []


def record_seen(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for tag, out_label in inp:
        state.append((label, tag, out_label))


def report_seen(interface: Any, state: Any) -> None:
    """Write ``((group label, group host, host ran on), sorted records seen)``."""
    from disco.worker import active_task

    key = (active_task.group_label, active_task.group_host, active_task.host)
    interface.output(0).add(key, sorted(state))


def tag_host(interface: Any, state: Any, label: Any, inp: Any) -> None:
    from disco.worker import active_task

    for entry in inp:
        entry = entry.decode().strip() if isinstance(entry, bytes) else entry
        interface.output(0).add(entry, active_task.host)


# -- concurrent stages -----------------------------------------------------------------------


def slow_split(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for entry in inp:
        time.sleep(float(entry))
        interface.output(0).add(entry, time.time())


def stamp_start(interface: Any, params: Any) -> dict[str, float]:
    return {"started": time.time()}


def collect_times(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for entry, finished in inp:
        interface.output(0).add(entry, (state["started"], finished))


def record_entries(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for entry in inp:
        state.append(entry.decode().strip() if isinstance(entry, bytes) else entry)


def upper_reader(fd: Any, size: Any, url: str, params: Any) -> Any:
    """An input stream after ``task_input_stream``: upper-cased lines."""
    for line in fd:
        yield line.upper()


class ReportingStage(Stage):
    """A ``Stage`` whose ``done`` reports the ``taskinfo`` set on the node."""

    def __init__(self, name: str) -> None:
        super().__init__(name, done=self.report)

    def report(self, interface: Any, state: Any) -> None:
        interface.output(0).add("taskinfo", tuple(self.taskinfo))


# -- classic functions for chains ------------------------------------------------------------


def classic_words(line: Any, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def classic_double(record: Any, params: Any) -> Any:
    key, value = record
    yield key, value * 2


def classic_sum(iter: Any, params: Any) -> Any:
    from disco.util import kvgroup

    for key, values in kvgroup(sorted(iter)):
        yield key, sum(values)


def simple_map(self: Any, worker: Any, task: Any, **jobargs: Any) -> None:
    """``SimpleJob`` map: count words of raw inputs into partition 0."""
    from disco.worker.task_io import StreamCombiner, task_input_stream

    out = worker.output(task, partition=0).file
    opener = lambda url: StreamCombiner(url, [task_input_stream], None)  # noqa: E731
    for entry in worker.input(task, open=opener):
        for word in entry.split():
            out.add(word, 1)


def simple_reduce(self: Any, worker: Any, task: Any, **jobargs: Any) -> None:
    """``SimpleJob`` reduce: sum the records of the index files it gets (group_all)."""
    from disco.util import parse_dir
    from disco.worker import SerialInput
    from disco.worker.task_io import StreamCombiner, chain_reader, task_input_stream

    urls = [url for inp in worker.get_inputs() for url in parse_dir(inp.locations[0])]
    opener = lambda url: StreamCombiner(url, [task_input_stream, chain_reader], None)  # noqa: E731
    totals: dict[Any, int] = {}
    for key, value in SerialInput(urls, task=task, open=opener):
        totals[key] = totals.get(key, 0) + value
    out = worker.output(task, partition=None).file
    for key in sorted(totals):
        out.add(key, totals[key])


# -- when a combined label's records are freed ----------------------------------------------


def init_kept(interface: Any, params: Any) -> dict[str, Any]:
    return {"order": [], "kept": {}}


def keep_one_record(interface: Any, state: Any, label: Any, inp: Any) -> None:
    """Walk the label's sorted records, keeping the first ``(key, value)`` object."""
    state["order"].append(label)
    for record in inp:
        state["kept"].setdefault(label, record)


def done_with_references(interface: Any, state: Any) -> None:
    """Each kept record's reference count (one more while its label's list lives)."""
    import sys

    interface.output(0).add("order", state["order"])
    counts = {label: sys.getrefcount(record) for label, record in state["kept"].items()}
    interface.output(0).add("references", counts)
