"""Outputs lost with a node, pure: which are gone, who needs them, what replaces them.

A task's local outputs live on the node that ran it: its ``dir://<node>/...`` index
lists ``disco://<node>/...`` files of that node only (``disco/node/outputs.py``), and a
``disco://`` output names the node holding it.  When nodes are lost (``NodeLost``), an
output whose every replica names a lost node is gone.  The coordinator re-runs the
finished tasks whose lost outputs a stage still needs (``tasks_to_rerun``), holds their
consumers, and when a producer has finished again gives its consumers the new URLs
(``url_map``).  Other schemes (``http://``, ``tag://``, ``raw://``...) never count as
lost: they do not live on a Disco node.  The coordinator owns the state changes.
"""

from __future__ import annotations

from disco.backends.base import TaskOutput
from disco.master.grouping import url_host
from disco.master.stages import InputRecord, Job, Task

NODE_SCHEMES = ("dir://", "disco://")

UrlKey = tuple[str, ...]  # the replica URLs of one input, as a consumer holds them


def url_on(url: str, hosts: set[str] | frozenset[str]) -> bool:
    """Is ``url`` node data (``dir://``, ``disco://``) stored on one of ``hosts``?"""
    return url.startswith(NODE_SCHEMES) and url_host(url) in hosts


def output_lost(out: TaskOutput, lost: set[str] | frozenset[str]) -> bool:
    """Every replica of ``out`` is on a lost node."""
    return all(url_on(u, lost) for u in out.urls)


def input_lost(inp: InputRecord, lost: set[str] | frozenset[str]) -> bool:
    """Every replica of a task's input is on a lost node."""
    return bool(inp.urls) and all(url_on(u, lost) for u in inp.urls)


def output_keys(outputs: tuple[TaskOutput, ...]) -> list[UrlKey]:
    """What a consumer holds for each output (``output_items`` -> ``TaskInput.urls``):
    the index URL of a ``dir`` output, the replica URLs of a ``data`` output."""
    return [(out.url,) if out.kind == "dir" else tuple(out.urls) for out in outputs]


def consumers(job: Job, task: Task, outputs: tuple[TaskOutput, ...]) -> list[Task]:
    """The tasks of the stage after ``task``'s that were given one of ``outputs``."""
    index = job.stage(task.stage).index
    if index + 1 >= len(job.stages):
        return []
    keys = set(output_keys(outputs))
    nxt = job.stages[index + 1]
    found = []
    for taskid in nxt.taskids:
        other = job.tasks[taskid]
        if any(inp.urls in keys for inp in other.inputs):
            found.append(other)
    return found


def rerunning_producers(job: Job, task: Task) -> list[Task]:
    """The tasks of the stage before ``task``'s that run again after their outputs were
    lost and whose lost outputs ``task`` was given."""
    index = job.stage(task.stage).index
    if index == 0:
        return []
    held = {inp.urls for inp in task.inputs}
    return [
        job.tasks[t]
        for t in job.stages[index - 1].taskids
        if job.tasks[t].lost_outputs is not None
        and held & set(output_keys(job.tasks[t].lost_outputs or ()))
    ]


def tasks_to_rerun(job: Job, lost: set[str] | frozenset[str]) -> list[Task]:
    """The finished tasks whose outputs are on ``lost`` nodes and still needed, in
    stage order.

    Needed means: the last stage has not finished (its outputs are the job's results),
    the next stage has not opened (it will read every output), or a task of the next
    stage that has not finished, or that runs again itself, was given one of them.
    Stages are walked from the last, so a re-run that needs inputs lost with the same
    node makes their producers run again too.
    """
    rerun: list[Task] = []
    again: set[int] = set()
    last = len(job.stages) - 1
    for stage in reversed(job.stages):
        for taskid in stage.taskids:
            task = job.tasks[taskid]
            if task.state != "done" or not any(output_lost(o, lost) for o in task.outputs):
                continue
            if stage.index == last:
                needed = not stage.finished
            elif not job.stages[stage.index + 1].opened:
                needed = True
            else:
                needed = any(
                    c.state != "done" or c.taskid in again
                    for c in consumers(job, task, task.outputs)
                )
            if needed:
                rerun.append(task)
                again.add(taskid)
    return sorted(rerun, key=lambda t: (job.stage(t.stage).index, t.taskid))


def url_map(old: tuple[TaskOutput, ...], new: tuple[TaskOutput, ...]) -> dict[UrlKey, UrlKey] | str:
    """Old input URLs -> new ones, output by output, for a task that ran again.

    A string says why the new outputs cannot stand in for the old ones (another number
    or kind of outputs, labels the old ones did not have: the task is not
    deterministic), in which case the consumers' inputs would not give the exact answer.
    """
    if len(old) != len(new):
        return "it made %d outputs instead of %d" % (len(new), len(old))
    mapping: dict[UrlKey, UrlKey] = {}
    for before, after in zip(old, new, strict=True):
        if before.kind != after.kind:
            return "an output of kind %s became %s" % (before.kind, after.kind)
        if before.kind == "dir":
            extra = {lb for lb, _ in after.labels} - {lb for lb, _ in before.labels}
            if extra:
                return "its index has labels the lost one had not: %s" % sorted(extra)
        elif before.label != after.label:
            return "an output labelled %d is now labelled %d" % (before.label, after.label)
    for key_old, key_new in zip(output_keys(old), output_keys(new), strict=True):
        mapping[key_old] = key_new
    return mapping
