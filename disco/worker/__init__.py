"""The Python worker (library.md 9, 17): every 0.5 name of ``disco.worker``.

The code lives in modules with one job each; this package re-exports their names:

- ``disco.worker.protocol``: the worker side of the worker protocol (master-api.md 8);
- ``disco.worker.params``: ``Params``;
- ``disco.worker.inputs``: ``IDedInput``, replica failover and the ``Input`` classes;
- ``disco.worker.outputs``: ``BaseOutput``, ``Output``;
- ``disco.worker.jobpack``: building the job pack on the client (jobdict, jobenvs, jobhome);
- ``disco.worker.taskrun``: running a task on a node (``Worker.main``, ``start``, shuffle);
- ``disco.worker.base``: ``Worker``, made of the last three.

``python -m disco.worker`` runs ``Worker.main()`` on the nodes.  This package is imported
at the start of every task: keep its imports light.
"""

from __future__ import annotations

from typing import Any

#: The task this process runs (set by ``Worker.main``); schemes use it for locality.
#: It lives here, not in a submodule, because job code (and 0.5 code) reads and sets
#: ``disco.worker.active_task``.
active_task: Any = None

from disco.framing import PROTOCOL_VERSION  # noqa: E402
from disco.worker import protocol as _protocol  # noqa: E402
from disco.worker import report as _report  # noqa: E402, F401
from disco.worker import taskrun as _taskrun  # noqa: E402
from disco.worker.base import Worker  # noqa: E402
from disco.worker.inputs import (  # noqa: E402
    IDedInput,
    Input,
    InputIter,
    MergedInput,
    ParallelInput,
    ReplicaIter,
    SerialInput,
    copy_url,
    local_path,
)
from disco.worker.jobpack import LAUNCHER, LAUNCHER_PATH, input_settings  # noqa: E402
from disco.worker.outputs import BaseOutput, Output  # noqa: E402
from disco.worker.params import Params  # noqa: E402
from disco.worker.protocol import (  # noqa: E402
    DISCO_WORKER_MAX_TIME,
    REPLY_TIMEOUT,
    MessageWriter,
    ProtocolError,
)
from disco.worker.taskrun import export_task_settings, profile_key  # noqa: E402

# Private names of the module before the split, kept for code that reached for them.
_ReplyReader = _protocol._ReplyReader
_reader = _protocol._reader
_lock = _protocol._lock
_wait_for_end = _protocol.wait_for_end
_apply_memory_limit = _taskrun._apply_memory_limit


def __getattr__(name: str) -> Any:
    # ``read_index`` is ``disco.util``'s, imported when first asked for: disco.util is
    # heavy and this package is imported at the start of every task.
    if name == "read_index":
        from disco.util import read_index

        return read_index
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


__all__ = [
    "DISCO_WORKER_MAX_TIME",
    "LAUNCHER",
    "LAUNCHER_PATH",
    "PROTOCOL_VERSION",
    "REPLY_TIMEOUT",
    "BaseOutput",
    "IDedInput",
    "Input",
    "InputIter",
    "MergedInput",
    "MessageWriter",
    "Output",
    "ParallelInput",
    "Params",
    "ProtocolError",
    "ReplicaIter",
    "SerialInput",
    "Worker",
    "active_task",
    "copy_url",
    "export_task_settings",
    "input_settings",
    "local_path",
    "profile_key",
    "read_index",
]
