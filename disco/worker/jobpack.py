"""Client side of a worker (library.md 9.1): the job pack's jobdict, jobenvs and jobhome
(a zip with the job's module source, the files and modules it needs, and the launcher
``bin/disco-worker``)."""

from __future__ import annotations

import sys
from typing import Any

from disco.worker import report as _report

#: The launcher in every job home; ``jobdict['worker']`` (docs/architecture.md).
LAUNCHER_PATH = "bin/disco-worker"
LAUNCHER = b'#!/bin/sh\nexec "${DISCO_WORKER_PYTHON:-python3}" -m disco.worker "$@"\n'


def input_settings(job: Any) -> Any:
    """The settings ``tag://`` job inputs are expanded with: the job's settings, with
    ``DISCO_MASTER`` set to the job's own master when it was given (0.5 used the
    settings' master even for ``Job(master=...)``, docs/decisions.md)."""
    settings = getattr(job, "settings", None)
    master = getattr(job, "__dict__", {}).get("_master")
    if not master:
        return settings
    from disco.settings import DiscoSettings

    if not isinstance(settings, DiscoSettings):
        settings = DiscoSettings()
    return settings.with_values(DISCO_MASTER=str(master))


class JobPackBuilder:
    """The job pack half of ``disco.worker.Worker`` (run on the client)."""

    getitem: Any  # disco.worker.Worker.getitem

    @property
    def bin(self) -> str:
        """The worker executable inside the job home (the launcher)."""
        return LAUNCHER_PATH

    # -- building the job pack (client side) ---------------------------------------------
    def get_modules(self, job: Any, **jobargs: Any) -> list[Any]:
        """Modules the job's functions use (``disco.worker.modutil.find_modules``)."""
        from disco import job as _job

        functions = _job.job_functions(self, job, jobargs)
        return _job.find_job_modules(functions, _job.job_module_path(job))

    def jobdict(self, job: Any, **jobargs: Any) -> dict[str, Any]:
        from disco.settings import DiscoSettings

        settings = getattr(job, "settings", None) or DiscoSettings()
        return {
            "prefix": self.getitem("name", job, jobargs),
            "save_results": bool(self.getitem("save_results", job, jobargs, False)),
            "save_info": self.getitem("save_info", job, jobargs, "ddfs"),
            "scheduler": self.getitem("scheduler", job, jobargs, {}),
            "owner": self.getitem("owner", job, jobargs, settings["DISCO_JOB_OWNER"]),
            "worker": self.bin,
        }

    def jobenvs(self, job: Any, **jobargs: Any) -> dict[str, str]:
        from disco.job import pythonpath

        version = self.getitem("version", job, jobargs) or "%d.%d" % sys.version_info[:2]
        envs = {
            "PYTHONPATH": pythonpath(sys.path),
            "LD_LIBRARY_PATH": "lib",
            _report.PYTHON_ENV: str(version),
        }
        # [Not in 0.5] ``reuse_workers=False``: every task in a new process (the node's
        # ``disco.node.zygote.REUSE_ENV``, not imported: the node's module)
        if not self.getitem("reuse_workers", job, jobargs, True):
            envs["DISCO_WORKER_REUSE"] = "0"
        return envs

    def jobhome(self, job: Any, **jobargs: Any) -> bytes:
        jobzip = self.jobzip(job, **jobargs)
        jobzip.close()
        return jobzip.dumps()

    def jobzip(self, job: Any, **jobargs: Any) -> Any:
        """The job home zip (a ``disco.fileutils.DiscoZipFile``, still open)."""
        from disco.job import build_jobzip
        from disco.worker import shipping

        modules = self.getitem("required_modules", job, jobargs)
        if modules is None:
            # Found automatically and stored back, so the nodes import the same list.
            modules = self["required_modules"] = self.get_modules(job, **jobargs)
        # Every user module the pickled job refers to goes to lib/ (disco.worker.shipping);
        # this also fails here, before submission, if part of the job cannot be pickled.
        shipped = shipping.collect(job, jobargs)
        return build_jobzip(
            self, job, self.getitem("required_files", job, jobargs, {}), modules, shipped
        )
