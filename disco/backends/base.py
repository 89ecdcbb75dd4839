"""The backend contract: what the master asks of the place where tasks run.

The master's runtime owns all job state.  A backend only answers "run this task attempt
on that node" and reports how it ended.  Nothing in the contract assumes that the node
shares the master's machine: the node fetches the job pack by URL
(``TaskSpec.jobpack_url``), and while a task runs its worker talks to the master
through a ``TaskChannel`` (inputs, input errors, events), all async: in process for
the local backend, as HTTP messages (``disco.backends.channel.RemoteTaskChannel``,
keyed by ``TaskSpec.channel_token``) from anywhere else.  The node runtime
(``disco.node.runner``) drives the worker protocol and calls the channel.

Killing a task attempt is cancelling the asyncio task that awaits ``Backend.run_task``:
the backend must then kill the worker process (and its children) before returning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from disco.ddfs.nodestore import NodeStore

from disco.failure import Failure
from disco.lazydataclass import lazy_dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One attempt of one task, as the node runtime needs it (master-api.md 8.4)."""

    jobname: str
    taskid: int
    stage: str
    grouping: str
    group: tuple[int, str]  # (label, host or "")
    host: str  # the node the attempt runs on (configured host name)
    attempt: int  # 0 for the first run
    worker: str  # jobdict["worker"]: executable path relative to the job home
    jobenvs: dict[str, str]
    # the master's ``<master_url>/disco/ctrl/parameters?name=<job>`` (6.6): the node
    # fetches the job pack from it once per job
    jobpack_url: str
    master: str  # DISCO_MASTER URL given to the worker in the TASK reply
    disco_port: int
    put_port: int
    disco_data: str  # DISCO_DATA on the node
    ddfs_data: str  # DDFS_DATA on the node
    save_results: bool = False  # last stage of a job with save_results (DDFS, issue 3)
    # DISCO_AUTH_TOKEN of the cluster: given to the worker, used for saving results
    auth_token: str = field(default="", repr=False)
    # The attempt's token for ``POST /disco/ctrl/task_channel`` (registered by the
    # runtime, ``""`` when the attempt has none): how a remote node reaches its channel.
    channel_token: str = field(default="", repr=False)


@dataclass(frozen=True)
class Replica:
    replica_id: int
    url: str


@dataclass(frozen=True)
class InputEntry:
    """One input of a task in an INPUT reply: ``[input_id, "ok", label, [[rid, url]..]]``."""

    input_id: int
    label: int | str  # int, or "all" for a directory input under group_node/group_all
    replicas: tuple[Replica, ...]

    def to_json(self) -> list[object]:
        return [self.input_id, "ok", self.label, [[r.replica_id, r.url] for r in self.replicas]]


@dataclass(frozen=True)
class TaskOutput:
    """One output of a finished task attempt (master-api.md 8.6).

    ``kind == "dir"``: an index file URL (``dir://...``) with the ``(label, size)`` totals
    of the local outputs listed in it.  ``kind == "data"``: one remote output URL with its
    label and size; ``replicas`` lists every copy when there are several (a result saved
    as a DDFS blob), ``url`` being the first.
    """

    kind: Literal["dir", "data"]
    url: str
    label: int = 0
    size: int = 0
    labels: tuple[tuple[int, int], ...] = field(default=())
    replicas: tuple[str, ...] = field(default=())

    @property
    def urls(self) -> tuple[str, ...]:
        """Every replica URL of the output."""
        return self.replicas or (self.url,)


@dataclass(frozen=True)
class TaskDone:
    outputs: tuple[TaskOutput, ...]
    duration: float  # seconds the attempt ran


@lazy_dataclass(frozen=True)
class TaskFailed:
    """``kind``: "error" (recoverable: retried), "fatal" (kills the job).

    ``failure`` is the structured report (``disco.failure.Failure``) when the node
    runtime could tell what happened; ``message`` is then its text.  ``partial_bytes``:
    what the attempt had written before it failed (its partial outputs, already
    deleted); the master uses it to say how much a full disk needs.
    """

    kind: Literal["error", "fatal"]
    message: str
    failure: Failure | None = field(default=None, compare=False)
    # Bytes of partial outputs the attempt had written (deleted when it ended).
    partial_bytes: int = field(default=0, compare=False)


TaskResult = TaskDone | TaskFailed


class TaskChannel(Protocol):
    """How a running task reaches the master: the runtime's in-process implementation
    (``disco.master.runtime.AttemptChannel``) or ``disco.backends.channel.RemoteTaskChannel``
    over HTTP.  Every method may raise ``disco.backends.channel.ChannelClosed`` when the
    attempt has ended on the master (killed): the attempt then ends too."""

    async def get_inputs(
        self, mode: Literal["all", "include", "exclude"], ids: list[int]
    ) -> tuple[Literal["done", "more"], list[InputEntry]]:
        """Answer an INPUT request.  Waits (deferred reply) while the selection is empty
        and more inputs may still arrive (master-api.md 8.5)."""
        ...

    async def input_failed(self, input_id: int, replica_ids: list[int]) -> list[Replica] | None:
        """INPUT_ERR: mark replicas failed; replicas to RETRY with, or ``None`` for FAIL."""
        ...

    async def event(self, message: str) -> None:
        """Append an event to the job's log with this task's node as host."""
        ...


class Backend(Protocol):
    """Runs task attempts on nodes.  One instance per master.

    Optional: ``async check_hosts(hosts) -> {host: reason}`` names the hosts it cannot
    run (``save_config_table`` refuses them), and ``down_reason(host)`` says why a
    configured host is down (``nodeinfo``); the local backend has both.

    Optional: ``node_set() -> dict[str, int] | None``.  ``None`` (or no such method):
    the config table decides the nodes.  A dict: the nodes the backend has right now,
    ``host -> slots``; the runtime reads it each second (where it polls
    ``is_connected``) and the node set, ``nodeinfo`` and the web pages follow it (a
    config-table row for such a host overrides its slots).
    """

    async def start(self, hosts: list[str]) -> None:
        """Start (or connect to) the node runtimes for these configured hosts."""
        ...

    async def set_hosts(self, hosts: list[str]) -> None:
        """The config table changed: start new nodes, drop removed ones."""
        ...

    def is_connected(self, host: str) -> bool:
        """The backend's own knowledge, synchronous (polled each second)."""
        ...

    def node_set(self) -> dict[str, int] | None:
        """The nodes the backend has now (``host -> slots``), or ``None``: the config
        table decides (the local backend).  Optional, see the class docstring."""
        ...

    async def disk_usage(self, host: str) -> tuple[int, int]:
        """(free KiB, used KiB) of the node's data volume; (0, 0) if unknown."""
        ...

    async def data_disk(self, host: str) -> tuple[str, int]:
        """(mount point, free bytes) of the disk holding the node's DISCO_DATA."""
        ...

    async def run_task(self, spec: TaskSpec, channel: TaskChannel) -> TaskResult:
        """Run one attempt to its end.  Cancelling the awaiting task kills the worker."""
        ...

    def ddfs_node(self, host: str) -> NodeStore | None:
        """The DDFS storage of a node (``None`` while it is down), ddfs.md 0: what the
        DDFS master awaits (``disco.ddfs.nodestore``), in process or over the network."""
        ...

    async def remove_job_data(self, host: str, jobname: str) -> None:
        """Delete the job's data directory on a node (purge / GC)."""
        ...

    async def close(self) -> None: ...
