"""External programs as map/reduce functions (library.md 10.5, 16.6).

``package(files)`` builds the ``{'op': <exe bytes>, name: bytes}`` dict a job passes as
``map``/``reduce``.  On the node ``prepare`` writes it to ``ext.<stage>/`` in the job home,
starts ``op <map|reduce>``, sends the parameters, and ``ext_map``/``ext_reduce`` exchange
records ``<uint32 klen><key><uint32 vlen><value>`` (native byte order) with it.
Stderr lines ``**<MSG> text`` become task messages; ``**<ERR> text`` fails the task.
``ext_dir()`` is the folder of the C helpers (``disco.h``, ``disco.c``) that external
programs in C compile against.
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

from disco.compat import str_to_bytes
from disco.error import DiscoError
from disco.worker.classic.netstring import encode_netstring_fd

logger = logging.getLogger(__name__)

MAX_ITEM_SIZE = 1024**3  # keys and values over 1 GiB are rejected
_U32 = struct.Struct("=I")

_proc: ExternalProcess | None = None


class ExternalError(DiscoError):
    """The external program reported an error (``**<ERR>``) or broke the protocol."""


def ext_dir() -> str:
    """The folder holding ``disco.h`` and ``disco.c`` for external programs in C:
    ``$DISCO_HOME/ext`` when it has ``disco.h`` (0.5's place), else the copy installed
    with this package (``disco/ext``)."""
    from disco.settings import DiscoSettings

    home = os.path.join(str(DiscoSettings()["DISCO_HOME"]), "ext")
    if os.path.isfile(os.path.join(home, "disco.h")):
        return home
    return os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(__file__))), "ext")


def package(files: list[str]) -> dict[str, bytes]:
    """``{'op': bytes of files[0], basename(f): bytes for the rest}``."""
    out = {}
    for i, path in enumerate(files):
        with open(path, "rb") as f:
            out["op" if i == 0 else os.path.basename(path)] = f.read()
    return out


def _bytes(x: Any) -> bytes:
    if isinstance(x, bytes):
        data = x
    elif x is None:
        data = b""
    else:
        data = str_to_bytes(str(x))
    if len(data) > MAX_ITEM_SIZE:
        raise ExternalError("Key or value of %d bytes is over the 1 GiB limit" % len(data))
    return data


def _pair(key: Any, value: Any) -> bytes:
    k, v = _bytes(key), _bytes(value)
    return _U32.pack(len(k)) + k + _U32.pack(len(v)) + v


class ExternalProcess:
    """One running external program."""

    def __init__(self, path: str, mode: str, params: Any = None) -> None:
        # not imported with the module, which every warm process imports: a lean fork
        # base (docs/decisions.md), and only a job with an external program needs it
        import subprocess

        self.errors: list[str] = []
        self.proc = subprocess.Popen(
            [os.path.join(os.path.abspath(path), "op"), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._stderr = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr.start()
        # 10.5: a dict is sent as a netstring block, anything else as "0\n" (bytes, 21.1).
        header = encode_netstring_fd(params) if isinstance(params, dict) else b"0\n"
        self._write(header)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            if line.startswith("**<MSG>"):
                # One write per message: the task's stderr turns complete lines into MSG.
                sys.stderr.write(line[len("**<MSG>") :].strip() + "\n")
            elif line.startswith("**<ERR>"):
                self.errors.append(line[len("**<ERR>") :].strip())
            elif line:
                logger.info("external program: %s", line)

    def _check(self) -> None:
        if self.errors:
            raise ExternalError("External program failed: %s" % "; ".join(self.errors))

    def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._fail("stopped reading its input")

    def _fail(self, what: str) -> None:
        code = self.proc.wait()
        self._stderr.join(timeout=5)
        self._check()
        raise ExternalError("External program %s (exit status %s)" % (what, code))

    def _read(self, n: int) -> bytes | None:
        assert self.proc.stdout is not None
        data = self.proc.stdout.read(n)
        if not data:
            return None
        if len(data) < n:
            self._fail("sent a truncated record")
        return data

    def _read_u32(self) -> int | None:
        data = self._read(_U32.size)
        return None if data is None else _U32.unpack(data)[0]

    def _read_item(self) -> bytes:
        size = self._read_u32()
        if size is None:
            self._fail("ended in the middle of a record")
        elif size > MAX_ITEM_SIZE:
            self.proc.kill()
            raise ExternalError(
                "External program sent a key or value of %d bytes, over the 1 GiB limit" % size
            )
        data = self._read(size) if size else b""
        if data is None:
            self._fail("ended in the middle of a record")
        return data or b""

    def _read_pair(self) -> tuple[bytes, bytes]:
        key = self._read_item()
        return key, self._read_item()

    def map(self, entry: Any) -> list[tuple[bytes, bytes]]:
        """Send one entry (a bare entry with an empty key); read ``count`` pairs back."""
        key, value = entry if isinstance(entry, tuple) and len(entry) == 2 else (b"", entry)
        self._write(_pair(key, value))
        count = self._read_u32()
        if count is None:
            self._fail("ended without answering a map record")
        pairs = [self._read_pair() for _ in range(count or 0)]
        self._check()
        return pairs

    def reduce(self, pairs: Iterable[tuple[Any, Any]]) -> Iterator[tuple[bytes, bytes]]:
        """Send every pair (from a thread), yield the result lists as they arrive."""
        failure: list[BaseException] = []

        def feed() -> None:
            assert self.proc.stdin is not None
            try:
                for k, v in pairs:
                    self.proc.stdin.write(_pair(k, v))
                self.proc.stdin.close()
            except BrokenPipeError:
                pass
            except BaseException as e:  # reported after the output is read
                failure.append(e)
                self.proc.kill()

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        while True:
            count = self._read_u32()
            if count is None:
                break
            for _ in range(count):
                yield self._read_pair()
        writer.join()
        if failure:
            raise failure[0]
        code = self.proc.wait()
        self._stderr.join(timeout=5)
        self._check()
        if code != 0:
            raise ExternalError("External program exited with status %d" % code)

    def close(self, check: bool = False) -> None:
        """End the program (stdin closed, 10 s to exit, then killed).  With ``check``,
        raise ``ExternalError`` if it reported ``**<ERR>`` or exited with a failure."""
        if self.proc.poll() is None:
            if self.proc.stdin and not self.proc.stdin.closed:
                try:
                    self.proc.stdin.close()
                except BrokenPipeError:
                    pass
            import subprocess  # imported by __init__ already

            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.proc.stderr is not None and not self._stderr.is_alive():
            # A child of the program may still hold stderr open; closing it under the
            # reading thread would block until that child exits.
            self.proc.stderr.close()
        if check:
            self._check()
            if self.proc.returncode != 0:
                raise ExternalError("External program exited with status %d" % self.proc.returncode)


def prepare(
    program: dict[str, bytes], params: Any, path: str, mode: str | None = None
) -> ExternalProcess:
    """Write ``program`` to ``path`` (``op`` made executable) and start it in ``mode``
    (default: the last part of ``path``, e.g. ``ext.map`` -> ``map``)."""
    global _proc
    os.makedirs(path, exist_ok=True)
    for name, data in program.items():
        target = os.path.join(path, os.path.basename(name))
        with open(target, "wb") as f:
            f.write(data)
    os.chmod(os.path.join(path, "op"), 0o755)
    mode = mode or os.path.basename(os.path.normpath(path)).split(".")[-1]
    _proc = ExternalProcess(path, mode, params)
    return _proc


def _running() -> ExternalProcess:
    if _proc is None:
        raise ExternalError("No external program was started (call prepare first)")
    return _proc


def ext_map(e: Any, params: Any) -> list[tuple[bytes, bytes]]:
    """A map function for the classic worker backed by the prepared program."""
    return _running().map(e)


def ext_reduce(red_in: Iterable[tuple[Any, Any]], red_out: Any, params: Any) -> None:
    """A 3-argument reduce function backed by the prepared program."""
    for k, v in _running().reduce(red_in):
        red_out.add(k, v)


# -- 0.5's helper names of the external interface -----------------------------------------
def pack_kv(e: Any) -> bytes:
    """One record in the external format: a ``(key, value)`` pair, or a bare entry
    (empty key): ``<uint32 klen><key><uint32 vlen><value>``, native byte order."""
    key, value = e if isinstance(e, tuple) and len(e) == 2 else (b"", e)
    return _pair(key, value)


def unpack_kv() -> tuple[bytes, bytes]:
    """Read one ``(key, value)`` pair that the running program wrote."""
    return _running()._read_pair()


def parse_message(msg: str | bytes) -> None:
    """One stderr line of the program: ``**<MSG> text`` becomes a task message (the
    task's stderr), ``**<ERR> text`` fails the task (``ExternalError``); any other line
    is passed on to stderr as it is."""
    line = msg.decode("utf-8", "replace") if isinstance(msg, bytes) else msg
    kind, sep, payload = line.partition(">")
    if sep and kind == "**<MSG":
        sys.stderr.write(payload.strip() + "\n")
    elif sep and kind == "**<ERR":
        raise ExternalError("External program failed: %s" % payload.strip())
    else:
        sys.stderr.write(line)


def communicate(input_iter: Iterable[Any], oneshot: bool = False) -> Iterator[tuple[bytes, bytes]]:
    """Exchange records with the running program.  ``oneshot`` (map): send the first
    entry and yield its answer; otherwise (reduce): send every pair and yield the
    program's output until it exits."""
    proc = _running()
    if oneshot:
        for entry in input_iter:
            yield from proc.map(entry)
            return
        return
    yield from proc.reduce(input_iter)


def map(e: Any, params: Any) -> list[tuple[bytes, bytes]]:  # noqa: A001 - 0.5 name
    """0.5's external map function (``ext_map``)."""
    return ext_map(e, params)


def reduce(iter: Iterable[Any], params: Any) -> Iterator[tuple[bytes, bytes]]:  # noqa: A001
    """0.5's external reduce function, the 2-argument form: yields the program's pairs."""
    return communicate(iter)


def close() -> None:
    """Stop the running program, if any (0.5's name for ``close_ext``)."""
    close_ext()


def close_ext(check: bool = False) -> None:
    """Stop the prepared program; ``check`` as in ``ExternalProcess.close``."""
    global _proc
    proc, _proc = _proc, None
    if proc is not None:
        proc.close(check=check)
