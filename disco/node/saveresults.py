"""Saving a last-stage task's local outputs as DDFS blobs (``save_results``, ddfs.md 7.2).

At DONE the node runtime uploads each local output file as a blob named
``<job>:<taskid>:<attempt>:<file name>`` (characters outside the DDFS name rules made
``_``) with ``DDFS_BLOB_REPLICAS`` copies, through the master's ``new_blob`` and the
nodes' upload servers (``disco.ddfs.DDFS.push_blob``: a node that fails is excluded and
the blob sent elsewhere, up to ``SAVE_ATTEMPTS`` times).  The task's outputs then list
the blobs' replicas; the master tags them as ``disco:results:<job>`` when the job ends.
Blocking: call it in a thread.
"""

from __future__ import annotations

import os

from disco.backends.base import TaskSpec
from disco.ddfs.names import safe_name

SAVE_ATTEMPTS = 10  # ddfs.md 6: result-saving PUT attempts


def blob_prefix(spec: TaskSpec, path: str) -> str:
    """``<job>:<taskid>:<attempt>:<file name>``, made a valid blob name."""
    name = "%s:%d:%d:%s" % (spec.jobname, spec.taskid, spec.attempt, os.path.basename(path))
    return safe_name(name)


def save_outputs(spec: TaskSpec, paths: list[str]) -> list[list[str]]:
    """Upload every file of ``paths``; the replica URLs of each blob, in order."""
    from disco.ddfs import DDFS
    from disco.settings import DiscoSettings

    settings = DiscoSettings(DISCO_AUTH_TOKEN=spec.auth_token) if spec.auth_token else None
    ddfs = DDFS(spec.master, settings=settings)
    return [ddfs.push_blob(path, blob_prefix(spec, path), retries=SAVE_ATTEMPTS) for path in paths]
