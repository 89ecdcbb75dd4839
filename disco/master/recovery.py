"""Running jobs survive a master restart: what is saved, and how a job is rebuilt.

Owns the two halves of job recovery (docs/failures.md, "Master restart"):

- saving: ``done_task`` turns a task the coordinator has just marked done into the
  ``store.DoneTask`` row the runtime saves (outputs, attempt, node and
  ``stages.task_signature``); the runtime batches the rows of one feed in one SQLite
  transaction.  The job pack and the job record were saved at submission.
- rebuilding: ``restore_event`` reads an ``active`` job's stored pack and finished
  tasks, keeps those whose outputs are still on their nodes (the index file and every
  file it lists, read locally when the data is under this master's ``DISCO_DATA``, over
  HTTP otherwise) and returns the ``JobRestored`` event.  The coordinator builds the job
  again from its spec and marks those tasks done in the order they finished
  (``Coordinator._replay``); every other task runs again.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from disco.backends.base import TaskOutput
from disco.master import jobpack
from disco.master.stages import Task, task_signature
from disco.master.states import JobRestored, RestoredTask
from disco.master.store import DoneTask, JobRecord, Store

Fetch = Callable[[str], Awaitable[bool]]


class RecoveryError(Exception):
    """The job cannot be rebuilt (its pack is gone or unreadable)."""


def output_to_json(out: TaskOutput) -> list[Any]:
    return [
        out.kind,
        out.url,
        out.label,
        out.size,
        [list(p) for p in out.labels],
        list(out.replicas),
    ]


def output_from_json(data: list[Any]) -> TaskOutput:
    kind, url, label, size, labels, replicas = data
    return TaskOutput(
        kind=kind,
        url=url,
        label=int(label),
        size=int(size),
        labels=tuple((int(a), int(b)) for a, b in labels),
        replicas=tuple(replicas),
    )


def done_task(task: Task) -> DoneTask:
    """The row saved when ``task`` is done."""
    return DoneTask(
        job=task.job,
        taskid=task.taskid,
        attempt=task.attempt,
        host=task.host or "",
        signature=task_signature(task),
        outputs=[output_to_json(o) for o in task.outputs],
    )


class OutputCheck:
    """Are a finished task's outputs still on the nodes?"""

    def __init__(self, disco_data: str, port: int, session: aiohttp.ClientSession) -> None:
        self.disco_data = disco_data
        self.port = port
        self.session = session
        self.down: set[str] = set()  # hosts that did not answer: their outputs count as lost

    def _split(self, url: str) -> tuple[str, str]:
        """``scheme://host[:port]/path`` -> (host, path)."""
        rest = url.split("://", 1)[1]
        host, _, path = rest.partition("/")
        return host.split(":")[0], path

    def _local(self, path: str) -> str | None:
        """The file of ``disco/<host>/...`` when that node keeps its data in this
        master's ``DISCO_DATA`` (the local backend): no need to ask the node (which may
        be the master itself, not serving yet)."""
        parts = path.split("/")
        if len(parts) < 3 or parts[0] != "disco" or ".." in parts or "" in parts[1:]:
            return None
        if not os.path.isdir(os.path.join(self.disco_data, parts[1])):
            return None
        return os.path.join(self.disco_data, *parts[1:])

    async def _read(self, url: str) -> str | None:
        host, path = self._split(url)
        local = self._local(path)
        if local is not None:
            with open(local, encoding="utf-8") as f:
                return f.read()
        async with self._request("GET", host, path) as resp:
            return await resp.text() if resp.status == 200 else None

    def _request(self, method: str, host: str, path: str) -> Any:
        if host in self.down:
            raise OSError("%s did not answer" % host)
        target = "http://%s:%d/%s" % (host, self.port, path)
        return self.session.request(method, target, timeout=aiohttp.ClientTimeout(total=10))

    async def _exists(self, url: str) -> bool:
        host, path = self._split(url)
        local = self._local(path)
        if local is not None:
            return os.path.isfile(local)
        async with self._request("HEAD", host, path) as resp:
            return resp.status == 200

    async def present(self, outputs: list[TaskOutput]) -> bool:
        host = ""
        try:
            for out in outputs:
                host = self._split(out.url)[0]
                if out.kind == "dir":
                    text = await self._read(out.url)
                    if text is None:
                        return False
                    for line in text.splitlines():
                        parts = line.split()
                        if len(parts) == 3 and not await self._exists(parts[1]):
                            return False
                elif out.url.startswith("disco://") and not await self._exists(out.url):
                    return False
        except (TimeoutError, aiohttp.ClientConnectionError):
            self.down.add(host)  # one wait per host that is down, not one per task
            return False
        except (OSError, ValueError, aiohttp.ClientError):
            return False
        return True


async def restore_event(
    rec: JobRecord, store: Store, check: OutputCheck, now: float
) -> JobRestored:
    """The ``JobRestored`` event of an ``active`` job; ``RecoveryError`` if it cannot be."""
    try:
        with open(rec.jobpack, "rb") as f:
            data = f.read()
        spec = jobpack.decode(data)
    except (OSError, ValueError) as exc:
        raise RecoveryError("its job pack cannot be read: %s" % exc) from None
    done: list[RestoredTask] = []
    for row in store.load_tasks(rec.name):
        try:
            outputs = [output_from_json(o) for o in row.outputs]
        except (TypeError, ValueError):
            continue
        if await check.present(outputs):
            done.append(
                RestoredTask(row.taskid, row.signature, row.attempt, row.host, tuple(outputs))
            )
    return JobRestored(rec.name, spec, rec.start, tuple(done), now)
