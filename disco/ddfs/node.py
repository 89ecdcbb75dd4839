"""One DDFS storage node's files: volumes, blobs, tag versions and the tag index
(ddfs.md 1.3, 1.4, 1.7, 5.2).

``DDFSNode`` owns ``ROOT`` (``DDFS_DATA`` of the node): the volumes ``ROOT/vol*`` with
their ``blob/`` and ``tag/`` directories, the free-space choice of a volume for each new
file, staging files (``!partial...``) renamed into place only when complete and never
over an existing object, the in-memory index ``tag name -> (newest TS, volume)``, and the
scan and deletions GC asks for.  All methods do blocking file I/O: async callers run them
in a thread.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from typing import BinaryIO

from disco.ddfs.directwrite import DirectWriter, RecvInto
from disco.ddfs.names import (
    InvalidName,
    Timestamp,
    TimestampClock,
    disco_url,
    hash_dir,
    object_id,
    parse_object_id,
)
from disco.lazydataclass import lazy_dataclass
from disco.safenames import UnsafeName, check_object_id_length

logger = logging.getLogger(__name__)

KINDS = ("blob", "tag")
PARTIAL = "!partial"
TRASH = "!trash."
READ_ONLY = 0o400
# Bytes of a blob written between two hand-offs to the disk: the written range's
# writeback is started without waiting (``posix_fadvise(DONTNEED)``, which on Linux
# starts writing the dirty pages and drops only pages already clean), so the disk works
# while the upload goes on and ``commit``'s fsync stays short.  Waiting for the disk
# every 32 MiB (fdatasync) made a 3-replica push 3 to 6 times slower (benchmarks/NOTES.md).
SYNC_EVERY = 32 * 1024 * 1024
# Most bytes one ``BlobUpload.receive`` takes where the direct buffer is not used.
RECEIVE_PLAIN = 1024 * 1024


class NoSpace(OSError):
    """No volume has room for a new file (a full disk, or the simulated reserve)."""


@lazy_dataclass(frozen=True)
class StoredObject:
    """A blob or tag-version file found by ``DDFSNode.scan`` (GC)."""

    kind: str
    oid: str
    volume: str
    size: int
    ts: Timestamp

    @property
    def name(self) -> str:
        return self.oid.split("$", 1)[0]


class BlobUpload:
    """A blob being written to its staging file; ``commit()`` renames it into place."""

    def __init__(self, node: DDFSNode, oid: str, volume: str, staging: str, final: str) -> None:
        self.node = node
        self.oid = oid
        self.volume = volume
        self.staging = staging
        self.final = final
        self.file: BinaryIO = open(staging, "xb")  # noqa: SIM115 - closed by commit/abort
        self.size = 0
        self._synced = 0
        self._direct = DirectWriter(staging, self.file)  # past the page cache if allowed
        self._scratch: bytearray | None = None  # ``receive``'s buffer without ``_direct``

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self._direct.direct:
            self._direct.write(data)
            return
        self._write_plain(data)

    def receive(self, recv_into: RecvInto, limit: int) -> int:
        """Append at most ``limit`` bytes that ``recv_into`` puts straight into the
        upload's write buffer (a socket's ``recv_into``: one copy, from the kernel into
        the aligned buffer the disk write reads); how many (0: the sender closed)."""
        if self._direct.direct:
            n = self._direct.receive(recv_into, limit)
            self.size += n
            return n
        scratch = self._scratch
        if scratch is None:
            scratch = self._scratch = bytearray(RECEIVE_PLAIN)
        with memoryview(scratch) as view:
            n = recv_into(view[: min(limit, RECEIVE_PLAIN)])
            if n:
                self.size += n
                self._write_plain(view[:n])
        return n

    def _write_plain(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        if self.size - self._synced >= SYNC_EVERY:  # flush as we go: commit's fsync is short
            self.file.flush()
            start_writeback(self.file.fileno(), self._synced, self.size - self._synced)
            self._synced = self.size

    def commit(self) -> str:
        """fsync, make read-only, rename (refusing to overwrite); the canonical URL."""
        try:
            self._direct.finish()
            self._direct.close()
            os.fsync(self.file.fileno())
            self.file.close()
            os.chmod(self.staging, READ_ONLY)
            _rename_no_overwrite(self.staging, self.final)
        except BaseException:
            self.abort()
            raise
        return disco_url(self.node.host, self.volume, "blob", self.oid)

    def abort(self) -> None:
        """Drop the staging file: a broken upload leaves no half blob."""
        self._direct.close()
        if not self.file.closed:
            self.file.close()
        _remove(self.staging)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the disk start writing ``length`` bytes of ``fd`` from ``offset``, without
    waiting (``fdatasync`` where ``posix_fadvise`` is missing)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    else:
        os.fdatasync(fd)


def _rename_no_overwrite(src: str, dst: str) -> None:
    os.link(src, dst)  # FileExistsError if dst exists: never overwrite an object
    os.unlink(src)
    fd = os.open(os.path.dirname(dst), os.O_RDONLY)
    try:
        os.fsync(fd)  # the new name survives a crash
    finally:
        os.close(fd)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_write(path: str, data: bytes) -> None:
    with open(path, "xb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(path, READ_ONLY)


class DDFSNode:
    """The DDFS data of one node below ``root`` (``DDFS_DATA`` on that node)."""

    def __init__(self, host: str, root: str) -> None:
        self.host = host
        self.root = root
        # Free space (KiB) a volume must keep: writes that would go below it fail with
        # NoSpace.  0 in production; tests raise it to simulate a full disk.
        self.reserve_kb = 0
        self._clock = TimestampClock()
        self._lock = threading.Lock()
        self._tags: dict[str, tuple[Timestamp, str]] = {}
        self.rescan_tags()

    # -- volumes (1.4) --------------------------------------------------------------------
    def volumes(self) -> list[str]:
        """``vol*`` entries of the root; ``vol0`` is created when there is none."""
        try:
            names = sorted(e for e in os.listdir(self.root) if e.startswith("vol"))
        except FileNotFoundError:
            names = []
        if not names:
            names = ["vol0"]
        for vol in names:
            for kind in KINDS:
                os.makedirs(os.path.join(self.root, vol, kind), exist_ok=True)
        return names

    def volume_space(self, volume: str) -> tuple[int, int]:
        """(free KiB, used KiB) of the file system holding a volume."""
        usage = shutil.disk_usage(os.path.join(self.root, volume))
        return usage.free // 1024, usage.used // 1024

    def disk_usage(self) -> tuple[int, int]:
        """(free KiB, used KiB) summed over the distinct file systems of the volumes."""
        free = used = 0
        seen: set[int] = set()
        try:
            for vol in self.volumes():
                dev = os.stat(os.path.join(self.root, vol)).st_dev
                if dev not in seen:
                    seen.add(dev)
                    f, u = self.volume_space(vol)
                    free, used = free + f, used + u
        except OSError:
            return (0, 0)
        return max(0, free - self.reserve_kb), used

    def choose_volume(self, size: int = 0) -> str:
        """The volume with the most free space; ``NoSpace`` if even it lacks room."""
        best, best_free = "", -1
        for vol in self.volumes():
            free = self.volume_space(vol)[0]
            if free > best_free:
                best, best_free = vol, free
        if best_free - self.reserve_kb < size // 1024 + 1:
            raise NoSpace("No space left on the volumes of %s" % self.host)
        return best

    def path(self, volume: str, kind: str, oid: str) -> str:
        return os.path.join(self.root, volume, kind, hash_dir(oid), oid)

    # -- blobs (1.3) ----------------------------------------------------------------------
    def find_blob(self, oid: str) -> str | None:
        """The volume holding blob ``oid``, or ``None``."""
        for vol in self.volumes():
            if os.path.exists(self.path(vol, "blob", oid)):
                return vol
        return None

    def blob_path(self, oid: str) -> str | None:
        vol = self.find_blob(oid)
        return None if vol is None else self.path(vol, "blob", oid)

    def begin_blob(self, oid: str, size: int = 0) -> BlobUpload:
        """Start writing blob ``oid`` (validated) to a staging file on the emptiest volume.

        Raises ``InvalidName``, ``FileExistsError`` (the blob is already here) or
        ``NoSpace``.
        """
        parse_object_id(oid)
        existing = self.blob_path(oid)
        if existing is not None:
            raise FileExistsError("File exists (path: %s)" % existing)
        vol = self.choose_volume(size)
        final = self.path(vol, "blob", oid)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        staging = os.path.join(
            os.path.dirname(final), "%s-%s.%s" % (PARTIAL, self._clock.now(), oid)
        )
        return BlobUpload(self, oid, vol, staging, final)

    def store_blob(self, oid: str, source: str) -> str:
        """Copy a local file in as blob ``oid`` (re-replication); its canonical URL."""
        upload = self.begin_blob(oid, os.path.getsize(source))
        try:
            with open(source, "rb") as f:
                shutil.copyfileobj(f, upload, 1024 * 1024)
        except BaseException:
            upload.abort()
            raise
        return upload.commit()

    # -- tags (1.5, 1.7) ------------------------------------------------------------------
    def write_tag(self, name: str, ts: Timestamp, data: bytes) -> str:
        """Phase 1 of a tag commit: the document in a staging file; its handle
        ``VOLUME/NAME$TS`` (no server path: it travels to the master and back)."""
        oid = object_id(name, ts)
        vol = self.choose_volume(len(data))
        staging = self._tag_staging(vol, oid)
        os.makedirs(os.path.dirname(staging), exist_ok=True)
        _remove(staging)
        _fsync_write(staging, data)
        return "%s/%s" % (vol, oid)

    def _tag_staging(self, volume: str, oid: str) -> str:
        final = self.path(volume, "tag", oid)
        return os.path.join(os.path.dirname(final), "%s.%s" % (PARTIAL, oid))

    def parse_staging(self, handle: str) -> tuple[str, str]:
        """(volume, tag object id) of a ``write_tag`` handle; ``InvalidName`` if it is not
        one of this node's volumes with a valid id."""
        volume, sep, oid = handle.partition("/") if isinstance(handle, str) else ("", "", "")
        if not sep or not self.is_volume(volume):
            raise InvalidName("Invalid staging handle")
        parse_object_id(oid, internal=True)
        try:
            check_object_id_length(oid)
        except UnsafeName:
            raise InvalidName("Invalid staging handle") from None
        return volume, oid

    def is_volume(self, volume: object) -> bool:
        """Whether ``volume`` names an existing volume of this node."""
        return isinstance(volume, str) and volume in self.volumes()

    def commit_tag(self, handle: str) -> str:
        """Phase 2: rename into place (never over an existing version); the version URL."""
        vol, oid = self.parse_staging(handle)
        name, ts = parse_object_id(oid, internal=True)
        staging = self._tag_staging(vol, oid)
        try:
            _rename_no_overwrite(staging, self.path(vol, "tag", oid))
        except BaseException:
            _remove(staging)
            raise
        with self._lock:
            current = self._tags.get(name)
            if current is None or current[0] < ts:
                self._tags[name] = (ts, vol)
        return disco_url(self.host, vol, "tag", oid)

    def abort_tag(self, handle: str) -> None:
        vol, oid = self.parse_staging(handle)
        _remove(self._tag_staging(vol, oid))

    def tag_version(self, name: str) -> tuple[Timestamp, str] | None:
        """The newest version of a tag on this node: (TS, volume), or ``None``."""
        with self._lock:
            return self._tags.get(name)

    def has_tag_version(self, name: str, ts: Timestamp) -> bool:
        """Whether this node holds version ``ts`` of the tag as its newest, and the file is
        there (the index may list a file lost since)."""
        version = self.tag_version(name)
        if version is None or version[0] != ts:
            return False
        return os.path.exists(self.path(version[1], "tag", object_id(name, ts)))

    def tag_names(self) -> list[str]:
        with self._lock:
            return list(self._tags)

    def read_tag(self, name: str, ts: Timestamp, volume: str) -> bytes:
        with open(self.path(volume, "tag", object_id(name, ts)), "rb") as f:
            return f.read()

    def tag_url(self, name: str, ts: Timestamp, volume: str) -> str:
        return disco_url(self.host, volume, "tag", object_id(name, ts))

    def rescan_tags(self) -> None:
        """Rebuild the tag index from the ``tag/`` directories (start, after GC)."""
        index: dict[str, tuple[Timestamp, str]] = {}
        for obj in self._walk("tag"):
            current = index.get(obj.name)
            if current is None or current[0] < obj.ts:
                index[obj.name] = (obj.ts, obj.volume)
        with self._lock:
            self._tags = index

    # -- GC (5.2, 5.3) --------------------------------------------------------------------
    def scan(self, partial_expires: float, now: float) -> list[StoredObject]:
        """Every blob and tag file; staging files older than ``partial_expires`` seconds
        (age from the id in their name) are deleted on the way (GC1)."""
        found = []
        for kind in KINDS:
            found.extend(self._walk(kind, partial_expires, now))
        return found

    def objects(self, kind: str) -> list[StoredObject]:
        """Every committed ``blob`` or ``tag`` file of this node (no side effects)."""
        return self._walk(kind)

    def _walk(
        self, kind: str, partial_expires: float | None = None, now: float = 0.0
    ) -> list[StoredObject]:
        found = []
        for vol in self.volumes():
            base = os.path.join(self.root, vol, kind)
            for dirpath, _dirs, files in os.walk(base):
                for fname in files:
                    path = os.path.join(dirpath, fname)
                    if fname.startswith(PARTIAL):
                        if partial_expires is not None:
                            self._expire_partial(path, fname, partial_expires, now)
                        continue
                    if fname.startswith("!"):
                        continue  # !trash.* and other internal files
                    try:
                        name, ts = parse_object_id(fname, internal=kind == "tag")
                        size = os.path.getsize(path)
                    except (InvalidName, OSError):
                        continue
                    found.append(StoredObject(kind, fname, vol, size, ts))
        return found

    def _expire_partial(self, path: str, fname: str, expires: float, now: float) -> None:
        oid = fname.split(".", 1)[1] if "." in fname else ""
        try:
            age = now - parse_object_id(oid, internal=True).ts.seconds
        except InvalidName:
            age = now - os.path.getmtime(path)
        if age > expires:
            logger.info("GC: removing stale upload %s", path)
            _remove(path)

    def delete(self, obj: StoredObject, paranoid: bool = False) -> None:
        """Remove an object (or rename it to ``!trash.<id>`` in paranoid mode)."""
        path = self.path(obj.volume, obj.kind, obj.oid)
        if paranoid:
            trash = os.path.join(os.path.dirname(path), TRASH + obj.oid)
            os.rename(path, trash)
            os.chmod(trash, 0o600)
        else:
            _remove(path)
