"""A small stand-in for the node runtime: runs ``bin/disco-worker`` in a job home and
answers the worker protocol (master-api.md 8) for one task.

It is only the far end of the pipes: framing, WORKER/TASK/INPUT/INPUT_ERR/MSG/OUTPUT
replies and DONE/ERROR/FATAL.  The worker under test is the real ``python -m
disco.worker`` in a real process.
"""

from __future__ import annotations

import io
import json
import os
import select
import socket
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from typing import Any

from disco.job import JobPack
from disco.task import hexhash, jobdata

HOST = "testhost"
JOBNAME = "Test@1:2:3"


@dataclass
class Run:
    status: str = ""
    payload: Any = None
    messages: list[str] = field(default_factory=list)
    outputs: list[list[Any]] = field(default_factory=list)
    input_errors: list[Any] = field(default_factory=list)
    log: list[tuple[str, Any]] = field(default_factory=list)
    jobhome: str = ""
    writes: list[bytes] = field(default_factory=list)  # each read of the worker's output

    def records(self, label: int | None = None) -> list[Any]:
        """Records of the outputs (all, or those with ``label``), in output order."""
        from disco.worker.task_io import disco_input_stream

        found = []
        for out_label, path, size in self.outputs:
            if label is None or out_label == label:
                with open(os.path.join(self.jobhome, path), "rb") as f:
                    found.extend(disco_input_stream(f, size, path))
        return found


class Node:
    """A job home under ``<root>/data/<HOST>/<hh>/<JOBNAME>`` holding ``job``'s pack."""

    def __init__(self, root: str, job: Any, **jobargs: Any) -> None:
        self.disco_data = os.path.join(root, "data")
        self.ddfs_data = os.path.join(root, "ddfs")
        self.jobhome = os.path.join(self.disco_data, HOST, hexhash(JOBNAME), JOBNAME)
        os.makedirs(self.jobhome)
        worker = job.worker
        pack = JobPack(
            worker.jobpack_version,
            worker.jobdict(job, **jobargs),
            worker.jobenvs(job, **jobargs),
            worker.jobhome(job, **jobargs),
            jobdata(job, jobargs),
        )
        self.jobfile = os.path.join(self.jobhome, "jobfile")
        with open(self.jobfile, "wb") as f:
            f.write(pack.dumps())
        loaded = JobPack.load(open(self.jobfile, "rb"))  # noqa: SIM115
        self.jobdict = loaded.jobdict
        self.jobenvs = loaded.jobenvs
        with zipfile.ZipFile(io.BytesIO(loaded.jobhome)) as zf:
            zf.extractall(self.jobhome)
        loaded.jobfile.close()
        os.chmod(os.path.join(self.jobhome, self.jobdict["worker"]), 0o755)

    def url(self, relpath: str) -> str:
        """``disco://`` URL of a file of the job home."""
        return "disco://%s/disco/%s/%s/%s/%s" % (HOST, HOST, hexhash(JOBNAME), JOBNAME, relpath)

    def run(
        self,
        stage: str = "map",
        inputs: list[tuple[int | str, list[str]]] | None = None,
        group: tuple[int, str] = (0, HOST),
        grouping: str = "split",
        timeout: float = 20.0,
        packets: bool = False,
    ) -> Run:
        """Run one task; ``inputs`` are ``(label, [replica urls])``.  With ``packets``
        the worker's output is a ``SOCK_SEQPACKET`` socket: each of its writes is one
        entry of ``Run.writes``."""
        inputs = inputs or []
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCO_", "DDFS_"))}
        env.update(self.jobenvs)
        env["DISCO_WORKER_PYTHON"] = sys.executable
        ours = theirs = None
        if packets:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", 'exec "$0"', os.path.join(self.jobhome, self.jobdict["worker"])],
            cwd=self.jobhome,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE if theirs is None else theirs.fileno(),
            stderr=subprocess.STDOUT,
        )
        if theirs is not None:
            theirs.close()
        run = Run(jobhome=self.jobhome)
        task = {
            "taskid": 0,
            "master": "http://127.0.0.1:1",
            "disco_port": 1,
            "put_port": 2,
            "ddfs_data": self.ddfs_data,
            "disco_data": self.disco_data,
            "stage": stage,
            "grouping": grouping,
            "group": list(group),
            "jobfile": self.jobfile,
            "jobname": JOBNAME,
            "host": HOST,
        }
        reader = _Reader(proc, time.monotonic() + timeout, ours, run.writes)
        try:
            while not run.status:
                mtype, payload = reader.message()
                run.log.append((mtype, payload))
                if mtype == "WORKER":
                    assert payload["version"] == "1.1" and payload["pid"] > 0
                    _reply(proc, "OK", "ok")
                elif mtype == "TASK":
                    _reply(proc, "TASK", task)
                elif mtype == "INPUT":
                    _reply(proc, "INPUT", _select(inputs, payload))
                elif mtype == "INPUT_ERR":
                    run.input_errors.append(payload)
                    _reply(proc, "FAIL", "")
                elif mtype == "MSG":
                    run.messages.append(payload)
                    _reply(proc, "OK", "ok")
                elif mtype == "OUTPUT":
                    run.outputs.append(payload)
                    _reply(proc, "OK", "ok")
                elif mtype in ("DONE", "ERROR", "FATAL"):
                    run.status, run.payload = mtype, payload
                else:
                    raise AssertionError("unexpected message %s %r" % (mtype, payload))
        finally:
            proc.kill()  # what the node runtime does after DONE/ERROR/FATAL
            proc.wait(5)
            proc.stdin.close()  # type: ignore[union-attr]
            if proc.stdout is not None:
                proc.stdout.close()
            if ours is not None:
                ours.close()
        return run


def _select(inputs: list[tuple[Any, list[str]]], request: Any) -> list[Any]:
    rows = [
        [i, "ok", label, [[r, url] for r, url in enumerate(urls)]]
        for i, (label, urls) in enumerate(inputs)
    ]
    if request and request[0] == "include":
        rows = [row for row in rows if row[0] in request[1]]
    elif request and request[0] == "exclude":
        rows = [row for row in rows if row[0] not in request[1]]
    return ["done", rows]


def _reply(proc: subprocess.Popen[bytes], mtype: str, payload: Any) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    proc.stdin.write(b"%s %d %s\n" % (mtype.encode(), len(body), body))  # type: ignore[union-attr]
    proc.stdin.flush()  # type: ignore[union-attr]


class _Reader:
    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        deadline: float,
        sock: socket.socket | None = None,
        writes: list[bytes] | None = None,
    ) -> None:
        self.fd = proc.stdout.fileno() if sock is None else sock.fileno()  # type: ignore[union-attr]
        self.deadline = deadline
        self.buf = b""
        self.writes = writes if writes is not None else []

    def _more(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("worker timed out; output so far: %r" % self.buf[-2000:])
        ready, _, _ = select.select([self.fd], [], [], left)
        if ready:
            data = os.read(self.fd, 65536)
            if not data:
                raise AssertionError("worker exited; last output: %r" % self.buf[-2000:])
            self.writes.append(data)
            self.buf += data

    def message(self) -> tuple[str, Any]:
        while self.buf.count(b" ") < 2:
            self._more()
        mtype, size, rest = self.buf.split(b" ", 2)
        assert len(mtype) <= 10 and size.isdigit(), self.buf[:200]
        while len(rest) < int(size) + 1:
            self._more()
            mtype, size, rest = self.buf.split(b" ", 2)
        body, newline = rest[: int(size)], rest[int(size) : int(size) + 1]
        assert newline == b"\n", self.buf[:200]
        self.buf = rest[int(size) + 1 :]
        return mtype.decode(), json.loads(body)
