"""``Worker``: the dict of job parameters, and the code that runs tasks on the nodes.

Composed of one class per side: ``JobPackBuilder`` (client, ``disco.worker.jobpack``),
``TaskRunner`` (node, ``disco.worker.taskrun``) and ``WorkerProtocol`` (node, talking
to the master, ``disco.worker.protocol``).
"""

from __future__ import annotations

from typing import Any

from disco.worker.jobpack import JobPackBuilder
from disco.worker.outputs import BaseOutput
from disco.worker.protocol import WorkerProtocol
from disco.worker.taskrun import TaskRunner


class Worker(TaskRunner, JobPackBuilder, WorkerProtocol, dict):  # type: ignore[misc]
    """A worker: the dict of job parameters, and the code that runs tasks on the nodes.

    Parameters are resolved by ``getitem``: the ``run()`` keyword arguments first,
    then attributes of the job, then this dict.  Subclasses define
    ``jobpack_version`` and what each stage does.
    """

    # Pickled jobs name the class by its public 0.5 path (job packs stay byte-identical).
    __module__ = "disco.worker"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(self.defaults())
        self.update(kwargs)
        self.outputs: dict[Any, BaseOutput] = {}

    def defaults(self) -> dict[str, Any]:
        return {
            "save_results": False,
            "profile": False,
            "required_files": {},
            "required_modules": None,
        }

    def getitem(self, key: str, job: Any, jobargs: dict[str, Any], default: Any = None) -> Any:
        """``jobargs[key]``, else ``job.<key>`` if the job has it, else ``self[key]``."""
        if key in jobargs:
            return jobargs[key]
        if hasattr(job, key):
            return getattr(job, key)
        return self.get(key, default)
