"""A job's home directory on a node (master-api.md 6.1, 6.5, 6.6, 9.1, 9.2).

Owns: the job home path ``<DISCO_DATA>/<host>/<hh>/<jobname>``, and preparing it once
per node per job: fetch the job pack from the master (``TaskSpec.jobpack_url``, the
``parameters`` URL of 6.6, with the cluster's auth header) into ``<jobhome>/jobfile``
(write, then rename), unzip
the pack's jobhome section (refusing members that would land outside the directory),
make the worker executable and leave the ``.jobhome`` marker.  Reading the job pack
header here is deliberate (a few lines) so the node does not depend on the master's
job pack module.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
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
from collections.abc import Callable
from typing import Any

import aiohttp

from disco import auth
from disco.backends.base import TaskSpec
from disco.error import DiscoError
from disco.retryable import extraction_error_permanent
from disco.safenames import (
    UnsafeName,
    check_host_name,
    check_job_name,
    inside,
    no_symlink_below,
    relative_parts,
)

logger = logging.getLogger(__name__)

MARKER = ".jobhome"
RESERVED = ".disco"  # 6.5: index files live here; the job home zip may not write it
LOCK_TIMEOUT = 300.0  # 11.5: job home extraction lock timeout, 5 min
# the job pack's download: connect within 30 s, then no 60 s without data (an
# ``aiohttp.ClientTimeout`` built at the first download, see ``fetch_timeout``)
FETCH_TIMEOUT = {"total": None, "connect": 30, "sock_read": 60}
_FETCH_CHUNK = 1 << 20
_MAGIC = 0xD5C0
_HEADER = struct.Struct("!IIIII")


@functools.cache
def fetch_timeout() -> aiohttp.ClientTimeout:
    """``FETCH_TIMEOUT`` as aiohttp's timeout (built at first use: importing this module
    does not import aiohttp's client, disco.lazy_aiohttp)."""
    return aiohttp.ClientTimeout(**FETCH_TIMEOUT)


class JobHomeError(DiscoError):
    """The job home could not be prepared; the task attempt fails, 6.5.

    ``permanent``: the job pack itself is at fault (the job fails at once), not the
    node (retried), see ``disco.retryable.extraction_error_permanent``.
    """

    def __init__(self, jobname: str, reason: str, permanent: bool = False) -> None:
        super().__init__(jobname, reason)
        self.jobname = jobname
        self.reason = reason
        self.permanent = permanent

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


# Job homes this process has found ready, names and path checked (many tasks: the
# checks, ``realpath`` and an ``lstat`` per component, ran for every task of a job):
# (disco_data, host, jobname) -> (home, marker).  A later task of the job looks only at
# the marker, so a job home deleted since (purge) goes through every check again.
_READY: dict[tuple[str, str, str], tuple[str, str]] = {}
_READY_MAX = 4096


def ready_jobhome(spec: TaskSpec) -> str | None:
    """The job home of ``spec`` if this process has already checked it and it is still
    ready (its marker is there), else ``None`` (``ensure_jobhome`` prepares it)."""
    key = (spec.disco_data, spec.host, spec.jobname)
    known = _READY.get(key)
    if known is None:
        return None
    if os.path.exists(known[1]):
        return known[0]
    del _READY[key]
    return None


def _remember_ready(spec: TaskSpec, home: str) -> None:
    if len(_READY) >= _READY_MAX:
        _READY.pop(next(iter(_READY)))  # the oldest
    _READY[(spec.disco_data, spec.host, spec.jobname)] = (home, os.path.join(home, MARKER))


async def ensure_jobhome(
    spec: TaskSpec,
    session: aiohttp.ClientSession | None = None,
    *,
    local_jobpack: str | Callable[[], str | None] | None = None,
) -> str:
    """Prepare the job home of ``spec``'s job on ``spec.host`` once; return its path.

    The job pack is fetched from ``spec.jobpack_url`` (with ``session`` if given) only
    when the job home is not ready yet; ``local_jobpack``: the master's own file of the
    job pack (or a function that names it, called only when the home is not ready),
    copied instead of downloaded (a node in the master's process).  Raises
    ``JobHomeError`` (text ``Jobpack extraction failed: ...``) on any failure.
    """
    ready = ready_jobhome(spec)
    if ready is not None:
        return ready
    check_jobname(spec.jobname)
    home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    try:
        check_host_name(spec.host)
        inside(spec.disco_data, home, "job home")
    except UnsafeName as exc:
        raise JobHomeError(spec.jobname, str(exc)) from None
    if os.path.exists(os.path.join(home, MARKER)):
        _remember_ready(spec, home)
        return home
    if callable(local_jobpack):
        local_jobpack = local_jobpack()
    lock = _lock_for(home)
    try:
        async with asyncio.timeout(LOCK_TIMEOUT):
            await lock.acquire()
    except TimeoutError:
        raise JobHomeError(spec.jobname, "timed out waiting for the job home lock") from None
    try:
        if not os.path.exists(os.path.join(home, MARKER)):
            if local_jobpack is None:
                await fetch_jobpack(spec, home, session)
                await asyncio.to_thread(prepare_jobhome, home, spec.jobname)
            else:
                await asyncio.to_thread(copy_jobpack, spec, home, local_jobpack)
    finally:
        lock.release()
    _remember_ready(spec, home)
    return home


async def ensure_jobhome_locked(spec: TaskSpec) -> str:
    """``ensure_jobhome`` under a file lock ``<jobhome>.lock``: for nodes whose job homes
    are shared by several processes of the host (the Dask backend's node runtimes)."""
    home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    os.makedirs(os.path.dirname(home), exist_ok=True)
    fd = os.open(home + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)
        return await ensure_jobhome(spec)
    finally:
        os.close(fd)  # releases the lock


async def remove_job_data(disco_data: str, host: str, jobname: str) -> None:
    """Delete ``<DISCO_DATA>/<host>/<hh>/<jobname>`` and its lock file (purge, GC)."""
    check_jobname(jobname)
    check_host_name(host)
    path = jobhome_path(disco_data, host, jobname)
    no_symlink_below(disco_data, path, "job name")  # never delete through a link
    if os.path.isdir(path):
        await asyncio.to_thread(shutil.rmtree, path, True)
    try:
        os.unlink(path + ".lock")
    except OSError:
        pass


async def fetch_jobpack(
    spec: TaskSpec, home: str, session: aiohttp.ClientSession | None = None
) -> None:
    """Download the job pack to ``<home>/jobfile``: written, then renamed (6.6).

    Raises ``JobHomeError`` (retried on another attempt: the master or the network is
    at fault, not the pack) when the master does not send it."""
    headers = auth.headers({auth.TOKEN_SETTING: spec.auth_token})
    jobfile, tmp = _jobfile_paths(home)
    own = session is None
    timeout = fetch_timeout()
    client = aiohttp.ClientSession(timeout=timeout) if session is None else session
    try:
        await asyncio.to_thread(os.makedirs, home, exist_ok=True)
        async with client.get(spec.jobpack_url, headers=headers, timeout=timeout) as resp:
            if resp.status != 200:
                text = (await resp.text(errors="replace"))[:200].strip()
                raise _not_fetched(spec, "HTTP %d %s" % (resp.status, text))
            with open(tmp, "wb") as f:
                async for chunk in resp.content.iter_chunked(_FETCH_CHUNK):
                    f.write(chunk)
        os.replace(tmp, jobfile)
    except (OSError, aiohttp.ClientError, TimeoutError) as exc:
        # OSError: a full disk fails here too (its text names the cause)
        raise _not_fetched(spec, exc or type(exc)) from exc
    finally:
        if own:
            await client.close()
        if os.path.exists(tmp):
            os.remove(tmp)


def _jobfile_paths(home: str) -> tuple[str, str]:
    """``<home>/jobfile`` and a temporary name beside it, unique to this writer (the
    job pack is written there, then renamed)."""
    jobfile = os.path.join(home, "jobfile")
    return jobfile, "%s@%x:%x:%s" % (jobfile, os.getpid(), time.time_ns(), os.urandom(4).hex())


def _not_fetched(spec: TaskSpec, cause: object) -> JobHomeError:
    return JobHomeError(
        spec.jobname, "could not fetch the job pack from %s: %s" % (spec.jobpack_url, cause)
    )


def copy_jobpack(spec: TaskSpec, home: str, path: str) -> None:
    """``fetch_jobpack`` from the master's own file ``path`` (a node in the master's
    process: no HTTP request, no HTTP client), then ``prepare_jobhome``.  Same result and
    same ``JobHomeError`` text when the file cannot be read as when it cannot be fetched."""
    jobfile, tmp = _jobfile_paths(home)
    try:
        os.makedirs(home, exist_ok=True)
        shutil.copyfile(path, tmp)
        os.replace(tmp, jobfile)
    except OSError as exc:
        raise _not_fetched(spec, exc) from exc
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    prepare_jobhome(home, spec.jobname)


def prepare_jobhome(home: str, jobname: str = "") -> None:
    """Blocking part of ``ensure_jobhome``: unpack ``<home>/jobfile``; does nothing if
    the marker is present."""
    if os.path.exists(os.path.join(home, MARKER)):
        return
    try:
        jobfile = os.path.join(home, "jobfile")
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
    except (OSError, ValueError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        # NotImplementedError: an unsupported compression method; RuntimeError: encrypted
        logger.warning("job home %s: extraction failed: %s", home, exc)
        raise JobHomeError(jobname, str(exc), extraction_error_permanent(exc)) from exc


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


@functools.lru_cache(maxsize=256)
def safe_member_path(home: str, name: str) -> str | None:
    """``home/name`` if ``name`` is a relative path that stays inside ``home``
    (``disco.safenames.relative_parts``), else ``None``.  A function of the two strings
    only (no file is looked at): remembered, it is asked twice per task attempt."""
    try:
        return os.path.join(home, *relative_parts(name))
    except UnsafeName:
        return None


def _compression_supported(method: int) -> bool:
    if method in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        return True
    module = {zipfile.ZIP_BZIP2: "bz2", zipfile.ZIP_LZMA: "lzma"}.get(method)
    if module is None:
        return False
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _check_members(zf: zipfile.ZipFile, home: str) -> None:
    """``ValueError`` naming the first member this node cannot unpack into ``home``."""
    for info in zf.infolist():
        target = safe_member_path(home, info.filename)
        if target is None:
            raise ValueError("unsafe path in job home archive: %r" % info.filename)
        if os.path.relpath(target, home).split(os.sep)[0] in (RESERVED, MARKER, "jobfile"):
            raise ValueError("reserved path in job home archive: %r" % info.filename)
        if info.flag_bits & 0x1:
            raise ValueError("encrypted member in job home archive: %r" % info.filename)
        if not _compression_supported(info.compress_type):
            raise ValueError(
                "member %r of the job home archive uses compression method %d, which is "
                "not supported (use stored or deflated)" % (info.filename, info.compress_type)
            )


def check_jobhome(zipbytes: bytes, worker: str | None = None) -> None:
    """Raise ``ValueError`` if a job home archive could not be unpacked on a node, or
    (``worker`` given) lacks the worker: the master checks this at submit."""
    home = os.path.join(os.sep, "jobhome")
    names: set[tuple[str, ...]] = set()
    if zipbytes:
        try:
            with zipfile.ZipFile(io.BytesIO(zipbytes)) as zf:
                _check_members(zf, home)
                names = {
                    tuple(p for p in i.filename.split("/") if p not in ("", "."))
                    for i in zf.infolist()
                    if not i.is_dir()
                }
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise ValueError("the job home is not a valid zip archive: %s" % exc) from None
    if worker is not None:
        path = safe_member_path(home, worker)
        if path is None:
            raise ValueError("invalid worker path %r" % worker)
        if tuple(os.path.relpath(path, home).split(os.sep)) not in names:
            raise ValueError("worker %r is not in the job home" % worker)


def extract_zip(zipbytes: bytes, home: str) -> None:
    """Unpack the jobhome ZIP into ``home``; refuse absolute, ``..`` and ``.disco``
    members, encrypted ones and compression methods this Python cannot read."""
    if not zipbytes:
        return  # an empty jobhome section: nothing to unpack
    with zipfile.ZipFile(io.BytesIO(zipbytes)) as zf:
        members = zf.infolist()
        _check_members(zf, home)
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
