"""The task's inputs (library.md 9.3): ``IDedInput``, replica failover (``ReplicaIter``,
``InputIter``), the ``Input`` classes, and ``copy_url`` (a URL's bytes, from the local
file when there is one).  ``read_index`` is ``disco.util``'s; ``local_path`` is
``disco.locality``'s."""

from __future__ import annotations

import logging
import operator
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any

from disco.error import DataError
from disco.locality import local_path
from disco.worker import report as _report

logger = logging.getLogger("disco.worker")
_first = operator.itemgetter(0)


class IDedInput(tuple):
    """One input of the task: ``(worker, id, label)``; replicas come from the master."""

    def __new__(cls, args: Iterable[Any], replicas: list[Any] | None = None) -> IDedInput:
        self = super().__new__(cls, args)
        # The replicas of the INPUT reply that announced this input spare the first
        # ``replicas`` round trip; later accesses ask the master again (fresh order).
        self._fresh = replicas
        return self

    @property
    def worker(self) -> Any:
        return self[0]

    @property
    def id(self) -> int:
        return self[1]

    @property
    def label(self) -> int | str:
        return self[2]

    @property
    def replicas(self) -> list[tuple[int, str]]:
        fresh, self._fresh = self._fresh, None
        if fresh is not None:
            return fresh
        return self.worker.get_input(self.id)

    @property
    def locations(self) -> list[str]:
        return [url for _, url in self.replicas]

    @property
    def isindex(self) -> bool:
        locations = self.locations
        return bool(locations) and all(url.startswith("dir://") for url in locations)

    def unavailable(self, tried: Iterable[int]) -> list[tuple[int, str]] | None:
        """Report failed replicas (INPUT_ERR); replicas to retry with, or ``None``."""
        rtype, payload = self.worker.exchange("INPUT_ERR", [self.id, sorted(tried)])
        if rtype == "RETRY":
            return [(rid, url) for rid, url in payload]
        return None

    def __repr__(self) -> str:
        return "IDedInput(id=%r, label=%r)" % (self.id, self.label)


class ReplicaIter:
    """Replica URLs of one input to try in turn: a local one first, then random ones.

    When every replica has been tried, the failures are reported with INPUT_ERR and
    the iteration stops.
    """

    def __init__(self, input: Any) -> None:
        self.input = input
        self.used: set[int] = set()
        self.checked_local = False
        self.left = 0  # replicas not tried yet, after the one returned last

    def _replicas(self) -> dict[int, str]:
        if isinstance(self.input, IDedInput):
            return dict(self.input.replicas)
        if isinstance(self.input, str):
            return {0: self.input}
        return dict(enumerate(self.input))

    def __iter__(self) -> ReplicaIter:
        return self

    def __next__(self) -> str:
        replicas = self._replicas()
        unused = [rid for rid in replicas if rid not in self.used]
        self.left = max(0, len(unused) - 1)
        if not self.checked_local:
            self.checked_local = True
            for rid in unused:
                path = local_path(replicas[rid])
                if path is not None and os.path.exists(path):
                    self.used.add(rid)
                    return replicas[rid]
        if len(unused) == 1:
            rid = unused[0]
            self.used.add(rid)
            return replicas[rid]
        if unused:
            # only here: ``random`` is not in the memory tasks are forked from (its
            # at-fork reseed would run in every task: docs/decisions.md, "A lean fork base")
            import random

            rid = random.choice(unused)
            self.used.add(rid)
            return replicas[rid]
        if isinstance(self.input, IDedInput) and self.used:
            self.input.unavailable(self.used)
        raise StopIteration

    next = __next__  # 0.5's spelling (Python 2 iterators)


class InputIter:
    """Records of one input, failing over between replicas.

    A ``DataError`` while opening or reading a replica moves on to the next one and
    skips the records already delivered; with no replica left it raises
    ``DataError("Exhausted all available replicas...")`` whose ``replica_errors`` are
    the errors of every replica (``disco.retryable`` tells from them whether a retry
    can help).  While other replicas are left, a replica that does not answer gets
    ``FAILOVER_SECONDS`` (``comm.failover``) instead of the full HTTP retries.  After
    any other exception (e.g. ``Wait``) the next ``next()`` reopens the same replica
    and resumes.
    """

    #: What a dead replica may cost before the next one is tried (issue 11.6).
    FAILOVER_SECONDS = 1.0

    def __init__(self, input: Any, task: Any = None, open: Any = None, start: int = 0) -> None:
        self.input = input
        self.urls = ReplicaIter(input)
        self.open = open or Input.default_opener(task)
        self.delivered = start
        self.records: Iterator[Any] | None = None
        self.source: Any = None
        self.last_error: str | None = None
        self.last_exception: DataError | None = None
        self.finished = False
        self.url: str | None = None
        self.retry: str | None = None
        self.errors: list[DataError] = []  # one per failed replica

    def __iter__(self) -> InputIter:
        return self

    def iterate(self) -> Iterator[Any]:
        """The records from where the iteration stands, with the same failover as
        ``next()``; when one replica is left the records pass through without Python
        code per record (``delivered`` is counted by a C iterator and read when the
        replica ends or fails).  ``Input`` reads through it."""
        import itertools
        import traceback

        while not self.finished:
            if self.records is None or self.urls.left > 0:
                try:  # one record the careful way: opening, failover context
                    record = self.__next__()
                except StopIteration:
                    return
                yield record
                continue
            counter = itertools.count(self.delivered)  # pulled after each record
            try:
                yield from map(_first, zip(self.records, counter, strict=False))
            except DataError as e:
                self.delivered = next(counter)
                self._failed(e, traceback.format_exc())
                continue
            except BaseException:
                self.delivered = next(counter)
                self._close()  # e.g. Wait: the next iteration reopens this replica
                self.retry = self.url
                raise
            self.delivered = next(counter)
            self.finished = True
            self._close()

    def _close(self) -> None:
        source, self.source, self.records = self.source, None, None
        close = getattr(source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # closing a failed replica must not hide the failure
                logger.debug("closing %r failed", source, exc_info=True)

    def _failed(self, error: DataError, trace: str) -> None:
        self.last_error = trace
        self.last_exception = error
        self.errors.append(error)
        self._close()

    def _failover(self) -> Any:
        """Short HTTP patience while another replica is left (``comm.failover``)."""
        import contextlib

        from disco import comm

        if self.urls.left > 0:
            return comm.failover(self.FAILOVER_SECONDS)
        return contextlib.nullcontext()

    def _open_next(self) -> None:
        while self.records is None:
            url, self.retry = self.retry, None
            try:
                url = url or next(self.urls)
            except StopIteration:
                msg = "Exhausted all available replicas"
                last = self.last_exception
                if last is not None:
                    same = last.url == self.url
                    msg += ", last error was: %s" % (last.msg if same else last)
                    if same and last.code is not None:
                        msg += " (%s)" % last.code
                # The URL tried last, and the error it gave as the cause (its traceback).
                error = DataError(msg, self.url or self.input)
                error.replica_errors = list(self.errors)  # type: ignore[attr-defined]
                raise error from last
            self.url = url
            _report.reporter.reading(url)
            try:
                if self.urls.left > 0:
                    with self._failover():
                        records = self._open(url)
                else:  # the common case, one replica: no failover context
                    records = self._open(url)
                self.records = records
            except DataError as e:
                import traceback

                self._failed(e, traceback.format_exc())
            except BaseException:
                self._close()
                self.retry = url
                raise

    def _open(self, url: str) -> Iterator[Any]:
        """The records of replica ``url`` after those already delivered."""
        self.source = self.open(url)
        records = iter(self.source)
        if self.delivered:  # resume after the last record an earlier replica delivered
            import itertools

            for _ in itertools.islice(records, self.delivered):
                pass
        return records

    def __next__(self) -> Any:
        while not self.finished:
            if self.records is None:
                self._open_next()
            records = self.records
            assert records is not None
            try:
                if self.urls.left > 0:
                    with self._failover():
                        record = next(records)
                else:  # the common case, one replica: no context per record
                    record = next(records)
            except StopIteration:
                self.finished = True
                self._close()
                break
            except DataError as e:
                import traceback

                self._failed(e, traceback.format_exc())
                continue
            except BaseException:
                self._close()
                self.retry = self.url
                raise
            self.delivered += 1
            return record
        raise StopIteration

    next = __next__  # 0.5's spelling (Python 2 iterators)


class Input:
    """An iterable over one input with replica failover; waits and retries on ``Wait``."""

    def __init__(self, input: Any, task: Any = None, **kwds: Any) -> None:
        self.input = input
        self.task = task
        self.kwds = kwds

    @classmethod
    def default_opener(cls, task: Any) -> Any:
        def open(url: str) -> Any:
            from disco import schemes

            return schemes.open(url, task=task)

        return open

    def input_iter(self, input: Any) -> InputIter:
        return InputIter(input, task=self.task, **self.kwds)

    def _records(self, input: Any) -> Iterator[Any]:
        from disco.fileutils import Wait

        if isinstance(input, Input):  # e.g. SerialInput over prepare_input_map's inputs
            yield from input
            return
        records = self.input_iter(input)
        fast = type(records).__next__ is InputIter.__next__  # not a subclass's own next()
        while True:
            try:
                # delegated: no bytecode of this generator runs per record
                yield from records.iterate() if fast else records
                return
            except Wait as w:  # the iterator stays usable: go on where it stopped
                time.sleep(getattr(w, "retry_after", 1))

    def __iter__(self) -> Iterator[Any]:
        return self._records(self.input)


class SerialInput(Input):
    """Records of a list of inputs, one input after the other."""

    def __iter__(self) -> Iterator[Any]:
        # a C iterator over each input's records in turn (each input opened when its
        # turn comes): no generator frame of this level resumed per record
        import itertools

        return itertools.chain.from_iterable(map(self._records, self.input))


class ParallelInput(Input):
    """Records of a list of inputs, round robin; inputs that must ``Wait`` are parked."""

    BUSY_TIMEOUT = 1

    def __iter__(self) -> Iterator[Any]:
        from disco.fileutils import Wait

        iters = [self.input_iter(input) for input in self.input]
        while iters:
            progressed = False
            for it in list(iters):
                try:
                    record = next(it)
                except StopIteration:
                    iters.remove(it)
                    progressed = True
                    continue
                except Wait:
                    continue
                progressed = True
                yield record
            if iters and not progressed:
                time.sleep(self.BUSY_TIMEOUT)


class MergedInput(ParallelInput):
    """The sorted merge of inputs that are each sorted."""

    def __iter__(self) -> Iterator[Any]:
        import heapq

        return heapq.merge(*(self._records(input) for input in self.input))


def _copy_in_kernel(source: Any, out: Any) -> bool:
    """Append the rest of the file ``source`` to ``out`` with ``os.copy_file_range`` (no
    copy through Python) when ``out`` is a regular file; ``out``'s position is moved past
    the copied bytes.  ``False`` when that cannot be done: the copy is then to be made
    (or finished) the usual way, ``source`` and ``out`` positioned where it stopped."""
    import io
    import stat

    copy = getattr(os, "copy_file_range", None)
    if copy is None:
        return False
    try:
        fd, src = out.fileno(), source.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        out.flush()
        start, offset = out.tell(), source.tell()
        size = os.fstat(src).st_size
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
    done = 0
    try:
        while offset + done < size:
            n = copy(src, fd, size - offset - done, offset + done, start + done)
            if n == 0:
                break
            done += n
    except OSError:  # another file system, an old kernel: the rest the usual way
        source.seek(offset + done)
        out.seek(start + done)
        return False
    source.seek(offset + done)
    out.seek(start + done)
    return True


def append_files(out: Any, urls: Iterable[str], task: Any = None) -> None:
    """``copy_url`` of each of ``urls`` in turn (a shuffle's inputs: often thousands of
    small local files).  When ``out`` is a regular file, a local input is copied in the
    kernel by descriptors (its open, ``copy_file_range`` until its end, its close: no
    Python file object per input); ``out``'s position is after the copied bytes."""
    import stat

    todo = iter(urls)
    copy = getattr(os, "copy_file_range", None)
    try:
        out.flush()
        fd = out.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            copy = None
    except (AttributeError, OSError, ValueError):
        copy = None
    if copy is None:
        for url in todo:
            copy_url(url, out, task)
        return
    try:
        for url in todo:
            path = local_path(url, task)
            try:
                src = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if path is not None else -1
            except OSError:
                src = -1  # missing here, or not readable: ``copy_url`` says what is wrong
            if src < 0:
                out.seek(os.lseek(fd, 0, os.SEEK_CUR))  # where the kernel's copies ended
                copy_url(url, out, task)
                out.flush()
                continue
            try:
                while copy(src, fd, 1 << 30):  # both descriptors' positions move on
                    pass
            except OSError:
                # another file system, an old kernel: this input from where its copy
                # stopped, and the rest, the usual way
                out.seek(os.lseek(fd, 0, os.SEEK_CUR))
                with os.fdopen(src, "rb", closefd=False) as rest:
                    _copy_through_python(rest, out)
                for url in todo:
                    copy_url(url, out, task)
                return
            finally:
                os.close(src)
    finally:
        if not out.closed:  # what ``out`` holds written, then its position moved to the end
            out.flush()
            out.seek(os.lseek(fd, 0, os.SEEK_CUR))


def _copy_through_python(source: Any, out: Any, bufsize: int = 1 << 20) -> None:
    """``shutil.copyfileobj`` (imported when needed)."""
    import shutil

    shutil.copyfileobj(source, out, bufsize)


def copy_url(url: str, out: Any, task: Any = None, bufsize: int = 1 << 20) -> None:
    """Append the bytes behind ``url`` to the binary file ``out``."""
    path = local_path(url, task)
    if path is not None and os.path.exists(path):
        with open(path, "rb") as f:
            if not _copy_in_kernel(f, out):
                _copy_through_python(f, out, bufsize)
        return
    from disco import schemes

    source = schemes.open(url, task=task)
    try:
        if hasattr(source, "read"):
            _copy_through_python(source, out, bufsize)
        else:
            for chunk in source:
                out.write(chunk)
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            close()
