"""Input and output streams of tasks (library.md section 12) and the record readers.

Owns the stream contracts (12.1), ``StreamCombiner`` (12.2), the named stream functions
and chains (12.3), and the readers of the internal record format (16.1) and of the old
netstring format (16.2).  The writers are in ``disco.fileutils``.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from typing import Any

from disco import compression
from disco.compat import bytes_to_str
from disco.error import DataError
from disco.fileutils import (
    AtomicFile,
    DiscoOutputStream,
    ensure_free_space,
    netstring_record,
)
from disco.flatrecords import uniform_records
from disco.util import argcount, parse_index_line

__all__ = [
    "DiscoPlainOut",
    "InputStream",
    "OutputStream",
    "StreamCombiner",
    "chain_reader",
    "chain_stream",
    "default_stream",
    "disco_input_stream",
    "disco_output_stream",
    "gzip_line_reader",
    "gzip_line_stream",
    "gzip_reader",
    "gzip_stream",
    "input_stream",
    "old_netstr_reader",
    "output_stream",
    "parse_index_line",
    "plain_output_stream",
    "re_reader",
    "string_input_stream",
    "task_input_stream",
    "task_output_stream",
]

_HUNK_REST = struct.Struct("<BIQ")  # after the first (version) byte of a hunk header
MAX_HUNK = 1 << 30  # writers flush hunks at about 1 MiB: a larger size is corruption


# -- 12.1 contracts (documentation classes and stubs) ---------------------------------------


class InputStream:
    """What an input stream returns: iterable over entries; ``read(num_bytes=None)``."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError

    def read(self, num_bytes: int | None = None) -> bytes:
        raise NotImplementedError


class OutputStream:
    """What the last output stream returns: ``add(key, value)``, ``close()``."""

    def add(self, key: Any, value: Any) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def write(self, data: bytes) -> None:
        """Deprecated."""
        raise NotImplementedError

    @property
    def path(self) -> str:
        raise NotImplementedError


def input_stream(stream: Any, size: Any, url: str, params: Any) -> Any:
    """Documentation stub of the input stream contract."""


def output_stream(stream: Any, partition: Any, url: str, params: Any) -> Any:
    """Documentation stub of the output stream contract."""


# -- 12.2 StreamCombiner -------------------------------------------------------------------


class StreamCombiner:
    """Apply a chain of stream functions in order; ``fds`` keeps every result.

    A function taking exactly 4 positional arguments gets ``params`` as the 4th; a
    3-tuple result replaces ``(stream, size, url)``, a 2-tuple ``(stream, url)``, any
    other value only the stream (12.1).  ``url == '-'`` reads standard input instead.
    """

    def __init__(
        self, url: str, streams: Any, params: Any, fd: Any = None, size: Any = None
    ) -> None:
        self.fds: list[Any] = []
        if url == "-":
            self.fds.append(sys.stdin.buffer)
        else:
            for stream in streams:
                if argcount(stream) == 4:
                    result = stream(fd, size, url, params)
                else:
                    result = stream(fd, size, url)
                if isinstance(result, tuple) and len(result) == 3:
                    fd, size, url = result
                elif isinstance(result, tuple) and len(result) == 2:
                    fd, url = result
                else:
                    fd = result
                self.fds.append(fd)
        self.url = url
        self.size = size

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fds[-1])

    def __len__(self) -> int:
        return self.size or 0

    def add(self, key: Any, value: Any) -> None:
        self.fds[-1].add(key, value)

    def close(self) -> None:
        for fd in reversed(self.fds):
            if hasattr(fd, "close"):
                fd.close()


# -- 12.3 named streams ----------------------------------------------------------------------


def task_input_stream(stream: Any, size: Any, url: str, params: Any) -> Any:
    """Open ``url`` with its scheme's ``input_stream`` (``file`` when it has none)."""
    from disco import schemes

    return schemes.input_stream(stream, size, url, params)


def task_output_stream(stream: Any, partition: Any, url: str, params: Any) -> AtomicFile:
    """An ``AtomicFile`` at ``url`` (a local path); ``DataError`` under 1 MiB free."""
    try:
        ensure_free_space(url)
    except FileNotFoundError:  # the task's directory is made first (Task.makedirs)
        os.makedirs(os.path.dirname(os.path.abspath(url)), exist_ok=True)
        ensure_free_space(url)
    return AtomicFile(url)


def disco_output_stream(stream: Any, partition: Any, url: str, params: Any) -> Any:
    """Records in the internal format (16.1) written to ``stream``."""
    return DiscoOutputStream(stream)


def _read_exact(stream: Any, n: int) -> bytes:
    chunks = []
    while n > 0:
        data = stream.read(n)
        if not data:
            break
        chunks.append(data)
        n -= len(data)
    return b"".join(chunks)


def _remaining(stream: Any, size: Any, offset: int, head: bytes) -> tuple[Any, int]:
    """(stream, size) for the netstring reader from ``offset`` (head byte included)."""
    if size is None:
        try:
            size = len(stream)
        except TypeError:
            try:
                size = os.fstat(stream.fileno()).st_size
            except (AttributeError, OSError, io.UnsupportedOperation):
                rest = stream.read()
                return io.BytesIO(rest), len(head) + len(rest)
    return stream, int(size) - offset


class _HunkEnd:
    """What the pickle appended to a hunk unpickles to: the end of its records."""

    def __reduce__(self) -> Any:
        raise TypeError("the end of a hunk is not a record")


_HUNK_END = _HunkEnd()
_HUNK_END_ID = "disco.hunk_end"


def _hunk_end_pickle() -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, 4)
    pickler.fast = True
    pickler.persistent_id = lambda obj: _HUNK_END_ID if obj is _HUNK_END else None
    pickler.dump(_HUNK_END)
    return out.getvalue()


_HUNK_END_PICKLE = _hunk_end_pickle()


def _persistent_load(pid: Any) -> Any:
    if pid == _HUNK_END_ID:
        return _HUNK_END
    raise pickle.UnpicklingError("unsupported persistent id %r in a record" % (pid,))


def hunk_records(data: bytes) -> list[Any] | None:
    """The records of a hunk's payload unpickled in one C loop, or ``None`` when that
    cannot be trusted (the caller then unpickles them one at a time).

    One ``Unpickler`` loads the records in turn (``iter(load, end)``, the payload
    followed by a pickle of an end marker).  It gives the records ``pickle.load`` would
    give one by one as long as no record uses the memo, whose entries would otherwise
    carry over from record to record: so the result is kept only if the memo is still
    empty after the first record and at the end (the writers pickle flat records
    without memo, ``disco.fileutils.flat_pair``), and if every byte was read.
    """
    if not data:
        return []
    stream = io.BytesIO(data + _HUNK_END_PICKLE)
    unpickler = pickle.Unpickler(stream)
    unpickler.persistent_load = _persistent_load
    load = unpickler.load
    try:
        first = load()
        if first is _HUNK_END or unpickler.memo.copy():
            return None
        records = [first]
        records.extend(iter(load, _HUNK_END))
    except Exception:
        return None
    if stream.tell() != len(data) + len(_HUNK_END_PICKLE) or unpickler.memo.copy():
        return None
    return records


def disco_input_stream(
    stream: Any, size: Any, url: str, *, ignore_corrupt: bool = False
) -> Iterator[Any]:
    """Records of the internal format (16.1); concatenated files read as one.

    ``ignore_corrupt`` is keyword-only, so ``StreamCombiner`` never passes ``params``
    into it (21.8).  A hunk whose first byte is < 128 switches to the old netstring
    reader for the rest of the stream.
    """
    offset = 0
    while True:
        first = stream.read(1)
        if not first:
            return
        if first[0] < 128:
            rest, rest_size = _remaining(stream, size, offset, first)
            yield from old_netstr_reader(rest, rest_size, url, head=first)
            return
        header = _read_exact(stream, _HUNK_REST.size)
        if len(header) < _HUNK_REST.size:
            if ignore_corrupt:
                return
            raise DataError("Truncated data at %d bytes" % offset, url)
        compressed, checksum, hunk_size = _HUNK_REST.unpack(header)
        if hunk_size == 0:
            return
        if hunk_size > MAX_HUNK:
            if ignore_corrupt:
                return
            raise DataError(
                "Corrupted data at %d bytes: a hunk of %d bytes" % (offset, hunk_size), url
            )
        payload = _read_exact(stream, hunk_size)
        start, offset = offset, offset + 1 + _HUNK_REST.size + hunk_size
        if len(payload) < hunk_size:
            if ignore_corrupt:
                return
            raise DataError(
                "Truncated data at %d bytes" % (start + 1 + _HUNK_REST.size + len(payload)), url
            )
        try:
            data = compression.decompress(payload) if compressed else payload
            if compression.crc32(data) & 0xFFFFFFFF != checksum:
                raise ValueError("checksum mismatch")
        except (zlib.error, ValueError) as e:
            if ignore_corrupt:
                continue
            raise DataError("Corrupted data between bytes %d-%d: %s" % (start, offset, e), url)
        fast = uniform_records(data)
        if fast is None:
            fast = hunk_records(data)
        if fast is not None:
            yield from fast
            continue
        records = io.BytesIO(data)
        tell, load, end = records.tell, pickle.load, len(data)
        while tell() < end:
            try:
                record = load(records)
            except Exception as e:
                if ignore_corrupt:
                    break
                raise DataError(
                    "Corrupted data between bytes %d-%d: cannot unpickle a record: %s"
                    % (start, offset, e),
                    url,
                )
            yield record


chain_reader = disco_input_stream


class _Reader:
    """Buffered reads of at most ``size`` bytes (head first) for the netstring parser."""

    def __init__(self, fd: Any, size: int, head: bytes, fname: str) -> None:
        self.fd, self.left, self.fname = fd, size - len(head), fname
        self.buf, self.pos = head, 0

    def _more(self) -> bool:
        if self.left <= 0:
            return False
        data = self.fd.read(min(self.left, 65536))
        if not data:
            raise DataError("Truncated input: %d bytes missing" % self.left, self.fname)
        self.left -= len(data)
        self.buf = self.buf[self.pos :] + data
        self.pos = 0
        return True

    def at_end(self) -> bool:
        return self.pos >= len(self.buf) and not self._more()

    def until(self, sep: bytes, limit: int = 32) -> bytes:
        while True:
            idx = self.buf.find(sep, self.pos, self.pos + limit + 1)
            if idx >= 0:
                data, self.pos = self.buf[self.pos : idx], idx + 1
                return data
            if len(self.buf) - self.pos > limit or not self._more():
                raise DataError("Corrupted input: bad netstring length", self.fname)

    def exact(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            if not self._more():
                raise DataError("Truncated input: a record is cut short", self.fname)
        data = self.buf[self.pos : self.pos + n]
        self.pos += n
        return data


def _length(field: bytes, fname: str) -> int:
    if not field.isdigit():
        raise DataError("Corrupted input: invalid length %r" % field[:32], fname)
    return int(field)


def old_netstr_reader(
    fd: Any, size: Any, fname: str, head: bytes = b""
) -> Iterator[tuple[str, str]]:
    """Records of the netstring format (16.2) as ``(key, value)`` strings."""
    if size is None:
        raise ValueError("Content-length must be defined")
    reader = _Reader(fd, int(size), head, fname)
    while not reader.at_end():
        key = reader.exact(_length(reader.until(b" "), fname))
        if reader.exact(1) != b" ":
            raise DataError("Corrupted input: no space after a key", fname)
        value = reader.exact(_length(reader.until(b" "), fname))
        if reader.exact(1) != b"\n":
            raise DataError("Corrupted input: no newline after a value", fname)
        yield bytes_to_str(key), bytes_to_str(value)


def gzip_reader(fd: Any, size: Any, url: str, params: Any) -> tuple[gzip.GzipFile, Any, str]:
    """Following streams see the gunzipped bytes."""
    return gzip.GzipFile(fileobj=fd), size, url


def gzip_line_reader(fd: Any, size: Any, url: str, params: Any) -> Iterator[bytes]:
    """Lines of the gunzipped input; an error is printed (a task message) and ends it."""
    try:
        yield from gzip.GzipFile(fileobj=fd)
    except Exception as e:
        print("gzip_line_reader: %s: %s" % (url, e), file=sys.stderr)  # 12.3: printed


def string_input_stream(
    string: Any, size: Any, url: str, params: Any
) -> tuple[io.StringIO, int, str]:
    return io.StringIO(string), len(string), url


def re_reader(
    item_re_str: Any,
    fd: Any,
    size: Any,
    fname: str,
    output_tail: bool = False,
    read_buffer_size: int = 8192,
) -> Iterator[Any]:
    """Yield ``match.groups()`` of consecutive matches at the start of the buffer (12.3).

    On Python 3 the pattern must be bytes (the input is bytes).
    """
    item_re = re.compile(item_re_str)
    buf = b""
    total = 0
    while True:
        data = fd.read(read_buffer_size)
        if not data:
            break
        total += len(data)
        buf += data
        pos = 0
        while True:
            m = item_re.match(buf, pos)
            if not m or m.end() == pos:
                break
            yield m.groups()
            pos = m.end()
        buf = buf[pos:]
    if size is not None and total < size:
        raise DataError("Truncated input: expected %d bytes, got %d" % (size, total), fname)
    if buf:
        if output_tail:
            yield [buf]
        else:  # 12.3: a warning is printed (a task message)
            print(
                "Couldn't match the last %d bytes in %s. Some bytes may be missing from input."
                % (len(buf), fname),
                file=sys.stderr,
            )


class DiscoPlainOut:
    """``add(k, v)`` writes ``"<len> <str(k)> <len> <str(v)>\\n"`` (16.2)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream

    def add(self, key: Any, value: Any) -> None:
        self.stream.write(netstring_record(key, value))

    def close(self) -> None:
        pass


def plain_output_stream(stream: Any, partition: Any, url: str, params: Any) -> DiscoPlainOut:
    return DiscoPlainOut(stream)


chain_stream = (task_input_stream, chain_reader)
default_stream = (task_input_stream,)
gzip_stream = (task_input_stream, gzip_reader)
gzip_line_stream = (task_input_stream, gzip_line_reader)
