"""A job's home directory on a node (master-api.md 6.1, 6.5, 6.6, 9.1, 9.2).

Owns: the job home path ``<DISCO_DATA>/<host>/<hh>/<jobname>``, and preparing it once
per node per job: copy the job pack to ``<jobhome>/jobfile`` (write, then rename), unzip
the pack's jobhome section (refusing members that would land outside the directory),
make the worker executable and leave the ``.jobhome`` marker.  Reading the job pack
header here is deliberate (a few lines) so the node does not depend on the master's
job pack module.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import logging
import os
import shutil
import struct
import time
import weakref
import zipfile
from typing import Any

from disco.backends.base import TaskSpec
from disco.error import DiscoError
from disco.safenames import UnsafeName, check_host_name, check_job_name, inside, relative_parts

logger = logging.getLogger(__name__)

MARKER = ".jobhome"
RESERVED = ".disco"  # 6.5: index files live here; the job home zip may not write it
LOCK_TIMEOUT = 300.0  # 11.5: job home extraction lock timeout, 5 min
_MAGIC = 0xD5C0
_HEADER = struct.Struct("!IIIII")


class JobHomeError(DiscoError):
    """The job home could not be prepared; the task attempt fails (retried), 6.5."""

    def __init__(self, jobname: str, reason: str) -> None:
        super().__init__(jobname, reason)
        self.jobname = jobname
        self.reason = reason

    def __str__(self) -> str:
        return "Jobpack extraction failed: %s" % self.reason


def hash_dir(name: str) -> str:
    """``hh(name)``: the first byte of md5(name) as two lowercase hex digits (9.1)."""
    return hashlib.md5(name.encode("utf-8")).hexdigest()[:2]


def jobhome_path(disco_data: str, host: str, jobname: str) -> str:
    """``<DISCO_DATA>/<host>/<hh>/<jobname>`` (9.2)."""
    return os.path.join(disco_data, host, hash_dir(jobname), jobname)


def check_jobname(jobname: str) -> None:
    """Job names become path components (13.5): ``disco.safenames.check_job_name``."""
    try:
        check_job_name(jobname)
    except UnsafeName as exc:
        raise JobHomeError(jobname, str(exc)) from None


# One lock per job home and event loop (asyncio locks must not cross loops).
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _lock_for(path: str) -> asyncio.Lock:
    per_loop = _locks.setdefault(asyncio.get_running_loop(), {})
    return per_loop.setdefault(path, asyncio.Lock())


async def ensure_jobhome(spec: TaskSpec) -> str:
    """Prepare the job home of ``spec``'s job on ``spec.host`` once; return its path.

    Raises ``JobHomeError`` (text ``Jobpack extraction failed: ...``) on any failure.
    """
    check_jobname(spec.jobname)
    home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    try:
        check_host_name(spec.host)
        inside(spec.disco_data, home, "job home")
    except UnsafeName as exc:
        raise JobHomeError(spec.jobname, str(exc)) from None
    if os.path.exists(os.path.join(home, MARKER)):
        return home
    lock = _lock_for(home)
    try:
        async with asyncio.timeout(LOCK_TIMEOUT):
            await lock.acquire()
    except TimeoutError:
        raise JobHomeError(spec.jobname, "timed out waiting for the job home lock") from None
    try:
        await asyncio.to_thread(prepare_jobhome, spec.jobpack_path, home, spec.jobname)
    finally:
        lock.release()
    return home


def prepare_jobhome(jobpack_path: str, home: str, jobname: str = "") -> None:
    """Blocking part of ``ensure_jobhome``; does nothing if the marker is present."""
    if os.path.exists(os.path.join(home, MARKER)):
        return
    try:
        os.makedirs(home, exist_ok=True)
        jobfile = os.path.join(home, "jobfile")
        tmp = "%s@%x:%x:%s" % (jobfile, os.getpid(), time.time_ns(), os.urandom(4).hex())
        shutil.copyfile(jobpack_path, tmp)  # 6.6: write, then rename
        os.replace(tmp, jobfile)
        with open(jobfile, "rb") as f:
            worker, zipbytes = read_pack(f.read())
        extract_zip(zipbytes, home)
        worker_path = safe_member_path(home, worker)
        if worker_path is None:
            raise ValueError("invalid worker path %r" % worker)
        if not os.path.isfile(worker_path):
            raise ValueError("worker %r is not in the job home" % worker)
        os.chmod(worker_path, 0o755)
        with open(os.path.join(home, MARKER), "wb"):
            pass
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        logger.warning("job home %s: extraction failed: %s", home, exc)
        raise JobHomeError(jobname, str(exc)) from exc


def read_pack(data: bytes) -> tuple[str, bytes]:
    """``(jobdict["worker"], jobhome zip bytes)`` from a job pack (6.1)."""
    if len(data) < 128:
        raise ValueError("invalid header: job pack is %d bytes" % len(data))
    magic_version, dict_off, envs_off, home_off, data_off = _HEADER.unpack_from(data)
    if (
        magic_version >> 16 != _MAGIC
        or dict_off != 128
        or not dict_off < envs_off <= home_off <= data_off <= len(data)
    ):
        raise ValueError("invalid header")
    try:
        jobdict: Any = json.loads(data[dict_off:envs_off])
    except ValueError as exc:
        raise ValueError("invalid jobdict: %s" % exc) from None
    worker = jobdict.get("worker") if isinstance(jobdict, dict) else None
    if not isinstance(worker, str) or not worker:
        raise ValueError("missing key worker in jobdict")
    return worker, data[home_off:data_off]


def safe_member_path(home: str, name: str) -> str | None:
    """``home/name`` if ``name`` is a relative path that stays inside ``home``
    (``disco.safenames.relative_parts``), else ``None``."""
    try:
        return os.path.join(home, *relative_parts(name))
    except UnsafeName:
        return None


def extract_zip(zipbytes: bytes, home: str) -> None:
    """Unpack the jobhome ZIP into ``home``; refuse absolute, ``..`` and ``.disco`` members."""
    if not zipbytes:
        return  # an empty jobhome section: nothing to unpack
    with zipfile.ZipFile(io.BytesIO(zipbytes)) as zf:
        members = zf.infolist()
        for info in members:
            target = safe_member_path(home, info.filename)
            if target is None:
                raise ValueError("unsafe path in job home archive: %r" % info.filename)
            if os.path.relpath(target, home).split(os.sep)[0] in (RESERVED, MARKER, "jobfile"):
                raise ValueError("reserved path in job home archive: %r" % info.filename)
        for info in members:
            target = safe_member_path(home, info.filename)
            assert target is not None  # checked above
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target, mode | 0o600)
