"""Record writers and file helpers (library.md 15, formats 16.1 and 16.2).

Owns the writer side of the internal record format (hunks with the ``'<BBIQ'`` header),
the old netstring writer, ``AtomicFile``, ``DiscoOutput``, ``Chunker``, ``DiscoZipFile``
and the size constants.  The readers live in ``disco.worker.task_io``.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import pickle
import select
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from disco import compression, scratch
from disco.error import DataError
from disco.flatrecords import PICKLE_BATCH, flat_pickles

if TYPE_CHECKING:
    from disco.jobzip import DiscoZipFile as DiscoZipFile


def __getattr__(name: str) -> Any:
    # ``DiscoZipFile`` lives in ``disco.jobzip``: ``zipfile`` (and through it ``shutil``,
    # ``bz2``, ``lzma``) is not imported with this module, which is in the memory every
    # task is forked from (docs/decisions.md, "A lean fork base").
    if name == "DiscoZipFile":
        from disco.jobzip import DiscoZipFile as DiscoZipFile

        return DiscoZipFile
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


logger = logging.getLogger(__name__)

MB = 1024**2
MIN_DISK_SPACE = 1 * MB
MAX_RECORD_SIZE = 1 * MB
HUNK_SIZE = 1 * MB
CHUNK_SIZE = 64 * MB

# 16.1: byte 0 = 128 + version, byte 1 = compressed flag, CRC-32 of the uncompressed
# payload, stored payload length; all little-endian.
HUNK_HEADER = struct.Struct("<BBIQ")
# 16.1 says the 0.5 writer used protocol 1 and readers accept any protocol.  Protocol 1
# pickles every bytes object through codecs.encode (about 9 us for a 100-byte record);
# protocol 4 takes 1.4 us, and every Python 3 reader loads it (docs/decisions.md).
RECORD_PICKLE_PROTOCOL = 4


class Wait(Exception):
    """An input is not ready yet: try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: float = 1) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


def ensure_path(path: str) -> None:
    """Create the directory that will hold ``path``."""
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)


def ensure_free_space(fname: str) -> None:
    """``DataError`` when less than ``MIN_DISK_SPACE`` is free where ``fname`` lives."""
    st = os.statvfs(os.path.dirname(fname) or ".")
    free = st.f_bavail * st.f_frsize
    if free < MIN_DISK_SPACE:
        raise DataError("Only %d KB disk space available. Task failed." % (free // 1024), fname)


class AtomicFile:
    """A file written as ``<path>.partial`` and renamed to ``path`` on ``close()``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.partial = "%s.partial" % path
        try:
            self._fd = open(self.partial, "wb")  # noqa: SIM115 - closed in close()
        except FileNotFoundError:  # its directory first (most often it exists)
            ensure_path(path)
            self._fd = open(self.partial, "wb")  # noqa: SIM115 - closed in close()
        self.isopen = True
        # The file's own write, not a method calling it: record writers call it once
        # per record (a raw record writer in the sort stage, for one).
        self.write = self._fd.write  # type: ignore[method-assign]

    def write(self, data: bytes) -> int:
        return self._fd.write(data)

    def flush(self) -> None:
        self._fd.flush()

    def tell(self) -> int:
        return self._fd.tell()

    def fileno(self) -> int:
        return self._fd.fileno()

    def close(self) -> None:
        if self.isopen:
            self._fd.flush()
            if scratch.synced(self.path):  # not in a scratch directory (disco.scratch)
                os.fsync(self._fd.fileno())
            self._fd.close()
            os.rename(self.partial, self.path)
            self.isopen = False

    def abort(self) -> None:
        """Close and remove the partial file (nothing appears at ``path``)."""
        if self.isopen:
            self._fd.close()
            self.isopen = False
            try:
                os.unlink(self.partial)
            except FileNotFoundError:
                pass

    def size(self) -> int:
        return os.path.getsize(self.path if not self.isopen else self.partial)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _text(obj: Any) -> bytes:
    if isinstance(obj, bytes):
        return obj
    return str(obj).encode("utf-8")


def netstring_record(key: Any, value: Any) -> bytes:
    """``"<len(k)> <k> <len(v)> <v>\\n"`` with ``k = str(key)``, ``v = str(value)`` (16.2).

    Lengths count UTF-8 bytes (the same as characters for ASCII); ``bytes`` are written
    as they are.
    """
    k, v = _text(key), _text(value)
    return b"%d %s %d %s\n" % (len(k), k, len(v), v)


class DiscoOutputStream_v0:
    """The old netstring / plain text writer (16.2)."""

    def __init__(self, stream: Any, **kwargs: Any) -> None:
        self.stream = stream

    def add(self, key: Any, value: Any) -> None:
        self.stream.write(netstring_record(key, value))

    def append(self, record: Any) -> None:
        key, value = record
        self.add(key, value)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


#: Types of the objects of a flat record (``flat_pair``): pickled without memo entries.
FLAT_TYPES = frozenset({bytes, str, int, float, bool, type(None)})


def flat_pair(key: Any, value: Any) -> bool:
    """Whether the record ``(key, value)`` is flat: two distinct objects of exactly the
    ``FLAT_TYPES``.  Nothing in its pickle is shared, so it needs no memo entries and
    the record writer pickles it in ``Pickler.fast`` mode."""
    return key.__class__ in FLAT_TYPES and value.__class__ in FLAT_TYPES and key is not value


_EMPTY_HUNKS: dict[tuple[int, int], bytes] = {}


def empty_hunk(version: int = 1, compression_level: int = 2) -> bytes:
    """``encode_hunk(b"", version, compression_level)``, made once per version and level.

    Every record stream ends with an empty hunk (16.1), the same bytes each time: 0.5's
    ``zlib.compress(b"", level)`` (8 bytes) under a header with the CRC-32 of nothing.
    A task writes one per output; making it anew set up a deflate state (about 40 pages
    of memory written, 60-90 µs) for those 8 bytes."""
    key = (version, compression_level)
    hunk = _EMPTY_HUNKS.get(key)
    if hunk is None:
        hunk = _EMPTY_HUNKS[key] = encode_hunk(b"", version, compression_level)
    return hunk


def encode_hunk(payload: bytes, version: int = 1, compression_level: int = 2) -> bytes:
    """One hunk of the internal format (16.1): header, then the (zlib) payload.

    The zlib stream comes from ``disco.compression`` (ISA-L when installed: another
    deflate of the same payload, read by any zlib reader); an empty payload is always
    the 8 bytes of the standard library's zlib, as 0.5 wrote them."""
    checksum = compression.crc32(payload) & 0xFFFFFFFF
    compressed = int(compression_level > 0)
    if compressed:
        if not payload:
            payload = zlib.compress(payload, compression_level)
        elif stored(len(payload)):
            compressed = 0
        else:
            payload = compression.compress(payload, compression_level)
    return HUNK_HEADER.pack(128 + version, compressed, checksum, len(payload)) + payload


#: A hunk's payload under this many bytes is stored (flag 0, 16.1), not deflated, unless
#: the hunks must be 0.5's own bytes (``disco.compression`` on ``zlib``).
STORED_BELOW = 1024


def stored(size: int) -> bool:
    """Whether a non-empty payload of ``size`` bytes is written stored (flag 0).

    Deflating a few hundred bytes saves a few hundred bytes at most, but sets up a
    deflate state every time (ISA-L's level 2: about 130 KiB of memory written, some 35
    page faults in a forked task, where a tiny map task's one output hunk is the only
    one it deflates).  Every reader of the format, 0.5's too, reads a stored hunk; the
    empty hunk that ends a stream stays deflated (a stored one would have length 0, which
    readers take for the end of the file, and the shuffle concatenates files)."""
    return size < STORED_BELOW and compression.IMPLEMENTATION != "zlib"


def _nothing() -> None:
    pass


class DiscoOutputStream_v1:
    """Writer of the internal chunked record format (16.1).

    Each record is one pickle of protocol ``RECORD_PICKLE_PROTOCOL``, made by picklers
    kept for the stream and writing straight into the pending hunk (no new pickler and
    no new ``bytes`` per record).  ``add(key, value)`` of a flat record
    (``flat_pair``: two distinct ``bytes``/``str``/``int``/``float``/``bool``/``None``
    objects) pickles it without memo entries (``Pickler.fast``): the bytes of
    ``pickletools.optimize(pickle.dumps((key, value), 4))``, which the readers unpickle
    a hunk at a time (``disco.worker.task_io.hunk_records``).  Any other record, and
    every ``append(record)`` (the bytes of ``Chunker``), is ``pickle.dumps(record, 4)``
    (the memo cleared after each record).

    The pending hunk's buffer is kept from hunk to hunk (written over; given back only
    after a hunk far larger than ``min_hunk_size``, i.e. a huge record): a hunk is
    compressed straight from it and written as its header, then its payload.
    """

    def __init__(
        self,
        stream: Any,
        version: int = 1,
        compression_level: int = 2,
        min_hunk_size: int = HUNK_SIZE,
        max_record_size: int | None = None,
    ) -> None:
        self.stream = stream
        self.version = version
        self.compression_level = compression_level
        self.min_hunk_size = min_hunk_size
        self.max_record_size = max_record_size
        self.hunk = io.BytesIO()
        self.size = 0
        self._new_pickler()

    @property
    def hunk_size(self) -> int:
        """Bytes of the pending (uncompressed) hunk."""
        return self._tell()

    def _new_pickler(self) -> None:
        fast = pickle.Pickler(self.hunk, RECORD_PICKLE_PROTOCOL)
        fast.fast = True  # no memo: flat records only (they hold no shared objects)
        self._fast_dump = fast.dump
        self._tell = self.hunk.tell
        # The pickler with a memo is made for the first record that is not flat: a
        # stream of flat records (most of them) never needs it.
        self._dump: Any = self._first_dump
        self._clear_memo: Any = _nothing

    def _first_dump(self, record: Any) -> None:
        pickler = pickle.Pickler(self.hunk, RECORD_PICKLE_PROTOCOL)
        self._dump, self._clear_memo = pickler.dump, pickler.clear_memo
        pickler.dump(record)

    def add(self, key: Any, value: Any) -> None:
        # This runs once per record: the common case (a flat record, no size limit) in
        # as few steps as it takes; anything else is append((key, value)).
        if (
            key.__class__ in FLAT_TYPES
            and value.__class__ in FLAT_TYPES
            and key is not value
            and self.max_record_size is None
        ):
            self._fast_dump((key, value))  # cannot fail for these types
            if self._tell() > self.min_hunk_size:
                self.flush()
            return
        self._add((key, value), flat_pair(key, value))

    def add_all(self, records: Iterable[Any]) -> None:
        """``add(key, value)`` for each ``(key, value)`` of ``records``, in order: the same
        bytes and the same hunks.  A batch of records of one flat shape (``bytes`` keys of
        one length and values of one length, both under 256: fixed-size records) is
        pickled without a step per record (``disco.flatrecords.flat_pickles``); any other
        record takes ``add``'s path, minus the call."""
        if self.max_record_size is not None:
            for key, value in records:
                self.add(key, value)
            return
        records = iter(records)
        while True:
            batch: list[Any] = []
            try:
                batch.extend(itertools.islice(records, PICKLE_BATCH))
            except BaseException:
                self._add_each(batch)  # what came before the failure is written, as by add
                raise
            if not batch:
                return
            pickles = flat_pickles(batch)
            if pickles is None:
                self._add_each(batch)
            else:
                self._write_records(*pickles)

    def _add_each(self, batch: list[Any]) -> None:
        dump, tell, limit = self._fast_dump, self._tell, self.min_hunk_size
        for key, value in batch:
            if key.__class__ in FLAT_TYPES and value.__class__ in FLAT_TYPES and key is not value:
                dump((key, value))  # cannot fail for these types
                if tell() > limit:
                    self.flush()
            else:
                self._add((key, value), False)

    def _write_records(self, data: bytes, size: int) -> None:
        """Write ``data``, pickles of ``size`` bytes each, into the pending hunk; flush
        after the first record that takes the hunk past ``min_hunk_size``, as ``add``."""
        with memoryview(data) as view:
            at = 0
            while at < len(data):
                room = self.min_hunk_size - self._tell()
                take = min(len(data) - at, (room // size + 1) * size if room >= 0 else size)
                self.hunk.write(view[at : at + take])
                at += take
                if self._tell() > self.min_hunk_size:
                    self.flush()

    def append(self, record: Any) -> None:
        self._add(record, False)

    def _add(self, record: Any, flat: bool) -> None:
        start = self._tell()
        if flat:
            self._fast_dump(record)  # cannot fail for flat records
        else:
            try:
                self._dump(record)
            except BaseException:
                self._drop_from(start)
                raise
            self._clear_memo()
        end = self._tell()
        if self.max_record_size is not None and end - start > self.max_record_size:
            self._too_large(start, end)
        if end > self.min_hunk_size:
            self.flush()

    def _too_large(self, start: int, end: int) -> None:
        self._drop_from(start)
        raise ValueError(
            "Record of size %d is larger than max_record_size: %d"
            % (end - start, self.max_record_size)
        )

    def _drop_from(self, start: int) -> None:
        """Forget what a failed record wrote into the hunk (and the pickler's state)."""
        self.hunk.seek(start)
        self._new_pickler()

    def flush(self) -> None:
        """Write the pending records as one hunk (an empty hunk if there are none)."""
        end = self._tell()
        level = self.compression_level
        if not end and level > 0:  # the closing hunk of every stream: always the same bytes
            hunk = empty_hunk(self.version, level)
            self.stream.write(hunk)
            self.size += len(hunk)
            return
        deflated = level > 0 and not stored(end)
        with self.hunk.getbuffer() as buffer, buffer[:end] as payload:
            checksum = compression.crc32(payload) & 0xFFFFFFFF
            if deflated:
                data = compression.compress(payload, level)
            else:
                data = bytes(payload)  # the stream may keep what it is given
        header = HUNK_HEADER.pack(128 + self.version, int(deflated), checksum, len(data))
        self.stream.write(header)
        self.stream.write(data)
        self.size += len(header) + len(data)
        self.hunk.seek(0)
        if end > 4 * self.min_hunk_size + HUNK_SIZE:  # a huge record: give its memory back
            self.hunk.truncate()

    def close(self) -> None:
        """Flush pending records, then always one more empty hunk (16.1)."""
        if self._tell():
            self.flush()
        self.flush()


def DiscoOutputStream(stream: Any, version: int = -1, **kwargs: Any) -> Any:
    """The v0 writer when ``version == 0``, else v1."""
    if version == 0:
        return DiscoOutputStream_v0(stream, **kwargs)
    return DiscoOutputStream_v1(stream, **kwargs)


class DiscoOutput:
    """Records in the v1 format written to an ``AtomicFile`` at ``path``."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        self.path = path
        self.file = AtomicFile(path)
        self.stream = DiscoOutputStream_v1(self.file, **kwargs)

    def add(self, key: Any, value: Any) -> None:
        self.stream.add(key, value)

    def append(self, record: Any) -> None:
        self.stream.append(record)

    def close(self) -> None:
        self.stream.close()
        self.file.close()

    def size(self) -> int:
        return self.file.size()


class Chunker:
    """Split records into chunks of the v1 format (used by ``ddfs chunk``)."""

    def __init__(
        self, chunk_size: int = CHUNK_SIZE, max_record_size: int = MAX_RECORD_SIZE
    ) -> None:
        self.chunk_size = chunk_size
        self.max_record_size = max_record_size

    def chunks(self, records: Iterable[Any]) -> Iterator[bytes]:
        """Yield chunk bytes (ddfs.md 3.4): before each record, a chunk whose flushed
        (compressed) hunks exceed ``chunk_size`` is closed, so records never straddle
        chunks and a chunk may pass ``chunk_size`` by at most one hunk.

        The bytes are those ``DiscoOutputStream_v1`` writes for the same records (hunks
        flushed once they pass ``HUNK_SIZE``, an empty hunk closing each chunk), made in
        batches with the compression in threads (``disco.chunking``).
        """
        from disco import chunking

        return chunking.chunks(
            records,
            self.chunk_size,
            self.max_record_size,
            HUNK_SIZE,
            RECORD_PICKLE_PROTOCOL,
            encode_hunk,
        )


def files(path: str) -> Iterator[str]:
    """Every file under ``path`` (a directory, walked), or ``path`` itself."""
    if os.path.isdir(path):
        for dirpath, _dirs, files in os.walk(path):
            for name in files:
                yield os.path.join(dirpath, name)
    else:
        yield path


def raise_if_empty(path: str) -> None:
    """Raise ``DataError`` unless ``path`` is a file with data in it (a file that is
    missing or empty would become an empty input or job part without a word)."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise DataError("%s cannot be read: %s" % (path, e.strerror or e), path)
    if size == 0:
        raise DataError("%s is empty" % path, path)


def get_valid_path(path: str) -> str:
    """``path`` made absolute (``~`` expanded, symlinks resolved) if it exists; raise
    ``DataError`` naming it if it does not."""
    full = os.path.realpath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise DataError("%s does not exist" % path, path)
    return full


class NonBlockingInput:
    """Reads from a pipe (the worker protocol's stdin) with a timeout (library.md 15)."""

    def __init__(self, file: Any, timeout: float = 600) -> None:
        self.fd = file.fileno() if hasattr(file, "fileno") else file
        self.timeout = timeout
        self.buf = b""

    def _fill(self, spent: float) -> float:
        start = time.monotonic()
        remaining = self.timeout - spent
        if remaining <= 0:
            raise OSError("Timeout: no input for %s seconds" % self.timeout)
        ready, _, _ = select.select([self.fd], [], [], remaining)
        if not ready:
            raise OSError("Timeout: no input for %s seconds" % self.timeout)
        data = os.read(self.fd, 65536)
        if not data:
            raise EOFError("Input closed")
        self.buf += data
        return spent + time.monotonic() - start

    def t_read(self, nbytes: int, spent: float = 0) -> bytes:
        while len(self.buf) < nbytes:
            spent = self._fill(spent)
        data, self.buf = self.buf[:nbytes], self.buf[nbytes:]
        return data

    def t_read_until(self, delim: bytes, spent: float = 0) -> tuple[float, bytes]:
        while delim not in self.buf:
            spent = self._fill(spent)
        idx = self.buf.index(delim) + len(delim)
        data, self.buf = self.buf[:idx], self.buf[idx:]
        return spent, data
