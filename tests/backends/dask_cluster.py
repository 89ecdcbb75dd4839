"""A real Dask cluster on loopback for the tests: ``dask scheduler`` + ``dask worker``s.

The scheduler listens on 127.0.0.1 (a free port); each worker is an ordinary
``dask worker --host 127.0.0.x --nthreads 2 --no-nanny`` process (nothing Disco-specific on
its command line) whose environment gives the node its own ``DISCO_ROOT`` (so its own
``DISCO_DATA`` and ``DDFS_DATA``), as separate machines would have.  Every process runs in
its own process group; ``stop()`` kills the groups (the Disco workers and zygotes die
with their Dask worker).  Readiness is read from the processes' logs (``Registered to``),
polled with a deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from disco.test import poll_for
from tests.conftest import free_port, live_processes

DASK = os.path.join(os.path.dirname(sys.executable), "dask")
START_TIMEOUT = 90.0  # a loaded machine: interpreter start-up plus distributed's imports


@dataclass
class DaskProcess:
    name: str
    host: str
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def descendants(self) -> set[int]:
        """PIDs of the live processes below this one (its zygote, Disco task workers)."""
        parents = {pid: int(fields[1]) for pid, fields in live_processes().items()}
        found, frontier = set(), {self.proc.pid}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
            found |= frontier
        return found

    def listens_on(self, host: str, port: int) -> bool:
        """Does this process hold the listening socket ``host:port`` (IPv4)?"""
        want = "%s:%04X" % ("".join("%02X" % int(b) for b in reversed(host.split("."))), port)
        inodes = set()
        try:
            with open("/proc/%d/net/tcp" % self.proc.pid) as f:
                for line in f.readlines()[1:]:
                    fields = line.split()
                    if fields[1] == want and fields[3] == "0A":  # LISTEN
                        inodes.add("socket:[%s]" % fields[9])
            fds = os.listdir("/proc/%d/fd" % self.proc.pid)
        except OSError:
            return False
        for fd in fds:
            try:
                if os.readlink("/proc/%d/fd/%s" % (self.proc.pid, fd)) in inodes:
                    return True
            except OSError:
                continue
        return False

    def kill(self) -> None:
        """SIGKILL the process group (the Dask process and anything it started)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(30)


@dataclass
class DaskCluster:
    """A scheduler and workers on loopback; ``address`` is the scheduler's."""

    root: Path
    address: str = ""
    nthreads: int = 2  # --nthreads of each worker
    scheduler: DaskProcess | None = None
    workers: list[DaskProcess] = field(default_factory=list)

    def _env(self, host: str | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCO_", "DDFS_"))}
        env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
        env["DASK_DISTRIBUTED__ADMIN__TICK__LIMIT"] = "60s"  # no "event loop blocked" noise
        if host is not None:
            env["DISCO_ROOT"] = str(self.root / "nodes" / host)
            env["DISCO_HOME"] = str(self.root / "nodes" / host)
        return env

    def _spawn(self, name: str, host: str, args: list[str]) -> DaskProcess:
        log = self.root / ("%s.log" % name)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [DASK, *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self._env(None if name == "scheduler" else host),
                cwd=str(self.root),
                start_new_session=True,
            )
        return DaskProcess(name, host, proc, log)

    def start(self, hosts: list[str]) -> DaskCluster:
        port = free_port("127.0.0.1")
        self.address = "tcp://127.0.0.1:%d" % port
        self.scheduler = self._spawn(
            "scheduler",
            "127.0.0.1",
            ["scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        )
        self._wait(self.scheduler, "Scheduler at:")
        for host in hosts:
            self.add_worker(host, wait=False)
        for worker in self.workers:
            self._wait(worker, "Registered to:")
        return self

    def add_worker(self, host: str, wait: bool = True, nanny: bool = False) -> DaskProcess:
        """Start one more ``dask worker`` on ``host`` (a loopback address); ``nanny``: as
        ``dask worker`` runs by default, the worker in a child process of a nanny."""
        name = "worker-%s-%d" % (host, len(self.workers))
        worker = self._spawn(
            name,
            host,
            [
                "worker",
                self.address,
                "--host",
                host,
                "--nthreads",
                str(self.nthreads),
                "--nanny" if nanny else "--no-nanny",
                "--no-dashboard",
                "--name",
                name,
                "--death-timeout",
                "60",
            ],
        )
        self.workers.append(worker)
        if wait:
            self._wait(worker, "Registered to:")
        return worker

    def _wait(self, process: DaskProcess, text: str) -> None:
        def ready() -> bool:
            if not process.alive:
                raise AssertionError(
                    "dask %s exited (%s):\n%s"
                    % (process.name, process.proc.returncode, process.text()[-3000:])
                )
            return text in process.text()

        poll_for(ready, START_TIMEOUT, "dask %s to start" % process.name, interval=0.1)

    def workers_on(self, host: str) -> list[DaskProcess]:
        return [w for w in self.workers if w.host == host and w.alive]

    def stop(self) -> None:
        for process in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            if process.alive:
                try:
                    os.killpg(process.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + 10
        for process in [*self.workers, *([self.scheduler] if self.scheduler else [])]:
            try:
                process.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            process.kill()  # the group: whatever the process left behind
