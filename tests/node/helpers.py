"""Helpers for node tests: a TaskSpec, an in-test TaskChannel, shell-script workers, and
``PackMaster``: a real master whose ``parameters`` route serves the job packs a test
writes (nodes fetch job packs by URL, ``TaskSpec.jobpack_url``)."""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import Callable
from typing import Literal

from disco.backends.base import InputEntry, Replica, TaskSpec
from disco.embedded import EmbeddedMaster
from disco.master.events import job_dir
from disco.node.jobhome import jobhome_path
from disco.test import poll_for

JOBNAME = "WordCount@6b0:5464e:dc072"  # hh = "82" (master-api.md 9.1)
HOST = "node1"

# A POSIX sh prelude that speaks the worker protocol; replies are logged to replies.log.
PRELUDE = r"""#!/bin/sh
send() { printf '%s %d %s\n' "$1" "${#2}" "$2"; }
recv() { IFS= read -r line || exit 99; printf '%s\n' "$line" >> replies.log; }
hello() { send WORKER "{\"version\":\"1.1\",\"pid\":$$}"; recv; }
"""


def make_spec(tmp_path, **overrides: object) -> TaskSpec:
    fields: dict[str, object] = dict(
        jobname=JOBNAME,
        taskid=3,
        stage="map",
        grouping="split",
        group=(0, HOST),
        host=HOST,
        attempt=0,
        worker="bin/worker",
        jobenvs={},
        # nothing listens on port 9 (discard): tests that need a pack use PackMaster
        jobpack_url="http://127.0.0.1:9/disco/ctrl/parameters?name=" + JOBNAME,
        master="http://master:8989",
        disco_port=8989,
        put_port=8990,
        disco_data=str(tmp_path / "data"),
        ddfs_data=str(tmp_path / "ddfs"),
    )
    fields.update(overrides)
    return TaskSpec(**fields)  # type: ignore[arg-type]


def install_worker(spec: TaskSpec, body: str, *, prelude: bool = True) -> str:
    """Write ``body`` as the job's worker script in its job home; return the job home."""
    home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    path = os.path.join(home, spec.worker)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write((PRELUDE if prelude else "") + body)
    os.chmod(path, 0o755)
    return home


class Channel:
    """A TaskChannel for tests: canned inputs, recorded events and input errors."""

    def __init__(
        self,
        entries: list[InputEntry] | None = None,
        *,
        retry: list[Replica] | None = None,
    ) -> None:
        self.entries = entries or []
        self.retry = retry
        self.events: list[str] = []
        self.input_requests: list[tuple[str, list[int]]] = []
        self.input_errors: list[tuple[int, list[int]]] = []
        self.release = asyncio.Event()  # set to answer deferred INPUT requests
        self.release.set()
        self.on_event: Callable[[str], None] | None = None
        self.cancelled_inputs = 0

    async def get_inputs(
        self, mode: Literal["all", "include", "exclude"], ids: list[int]
    ) -> tuple[Literal["done", "more"], list[InputEntry]]:
        self.input_requests.append((mode, ids))
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled_inputs += 1
            raise
        if mode == "include":
            chosen = [e for e in self.entries if e.input_id in ids]
        elif mode == "exclude":
            chosen = [e for e in self.entries if e.input_id not in ids]
        else:
            chosen = list(self.entries)
        return "done", chosen

    async def input_failed(self, input_id: int, replica_ids: list[int]) -> list[Replica] | None:
        self.input_errors.append((input_id, replica_ids))
        return self.retry

    async def event(self, message: str) -> None:
        self.events.append(message)
        if self.on_event is not None:
            self.on_event(message)


class PackMaster:
    """A real master (``EmbeddedMaster``) serving the job packs of node tests."""

    def __init__(self, master: EmbeddedMaster) -> None:
        self.master = master

    def path(self, jobname: str = JOBNAME) -> str:
        """Where to write the job pack of ``jobname`` (its master directory)."""
        directory = job_dir(self.master.server.config.master_root, jobname)
        os.makedirs(directory, exist_ok=True)
        return os.path.join(directory, "jobfile")

    def url(self, jobname: str = JOBNAME) -> str:
        return "%s/disco/ctrl/parameters?name=%s" % (
            self.master.url,
            urllib.parse.quote(jobname, safe="@:"),
        )

    def spec(self, tmp_path, **overrides: object) -> TaskSpec:
        """``make_spec`` whose job pack URL is this master's."""
        jobname = str(overrides.get("jobname", JOBNAME))
        return make_spec(tmp_path, **{"jobpack_url": self.url(jobname), **overrides})


def read_replies(home: str) -> list[str]:
    try:
        with open(os.path.join(home, "replies.log")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    """``disco.test.poll_for`` with a finer interval (process states change fast)."""
    poll_for(predicate, timeout, what, interval=0.01)


def make_jobpack(
    path: str,
    files: dict[str, str],
    *,
    worker: str = "bin/worker",
    modes: dict[str, int] | None = None,
) -> bytes:
    """Write a version-2 job pack (master-api.md 6.1) whose jobhome zip holds ``files``."""
    import io
    import json
    import struct
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = ((modes or {}).get(name, 0o644)) << 16
            zf.writestr(info, text)
    jobdict = json.dumps(
        {"prefix": "WordCount", "worker": worker, "owner": "t@h", "scheduler": {}}
    ).encode()
    jobenvs = b"{}"
    jobhome = buf.getvalue()
    jobdata = b"opaque"
    dict_off = 128
    envs_off = dict_off + len(jobdict)
    home_off = envs_off + len(jobenvs)
    data_off = home_off + len(jobhome)
    header = struct.pack("!IIIII", 0xD5C00002, dict_off, envs_off, home_off, data_off)
    pack = header.ljust(128, b"\0") + jobdict + jobenvs + jobhome + jobdata
    with open(path, "wb") as f:
        f.write(pack)
    return pack
