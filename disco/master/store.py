"""Durable master state (master-api.md 13.15): SQLite under the master root, and the
JSON cluster configuration file of 3.4.

Owns: job records (status, start time, owner, worker, inputs, stage names, jobinfo
counters, results, stage results, job pack path), the finished tasks of running jobs
(outputs and signature, in completion order: what ``disco.master.recovery`` rebuilds a
running job from after a restart), the jobs' failure logs, runtime settings
(``max_failure_rate``, ``accept_new_jobs``), and the config table with both blacklists.
The config file ``DISCO_MASTER_CONFIG`` stays the source of truth for the table, as in
0.5 (users edit it); every save writes it (and a copy in SQLite).  Calls are short;
the runtime makes them from the event loop.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from disco.safenames import UnsafeName, check_host_name

logger = logging.getLogger(__name__)
_INSERT_TASK = "INSERT INTO done_tasks VALUES (?,?,?,?,?,?)"
_dumps = json.JSONEncoder().encode  # json.dumps with the default options, built once

RESTART_EVENT = "ERROR: Job killed: the master restarted and could not restore the job"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    status TEXT NOT NULL,
    start REAL NOT NULL,
    owner TEXT NOT NULL,
    worker TEXT NOT NULL,
    inputs TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    results TEXT NOT NULL,
    stage_results TEXT NOT NULL,
    jobpack TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS job_failures (name TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS done_tasks (
    job TEXT NOT NULL,
    taskid INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    host TEXT NOT NULL,
    signature TEXT NOT NULL,
    outputs TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS done_tasks_job ON done_tasks (job);
"""


@dataclass
class JobRecord:
    """What the master remembers of a job (enough for jobinfo, get_results, joblist)."""

    name: str
    status: str
    start: float
    owner: str = ""
    worker: str = ""
    inputs: list[str] = field(default_factory=list)
    pipeline: list[list[Any]] = field(default_factory=list)  # jobinfo counter rows
    results: list[list[str]] = field(default_factory=list)
    stage_results: dict[str, list[list[str]]] = field(default_factory=dict)
    jobpack: str = ""
    seq: int = 0


@dataclass(frozen=True)
class DoneTask:
    """A finished task of a running job; ``outputs`` as ``recovery.output_to_json``."""

    job: str
    taskid: int
    attempt: int
    host: str
    signature: str
    outputs: list[Any]


@dataclass
class ClusterConfig:
    """The 3.4 configuration: ``hosts`` rows and the two blacklists."""

    hosts: list[list[str]]
    blacklist: list[str] = field(default_factory=list)
    gc_blacklist: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"hosts": self.hosts, "blacklist": self.blacklist, "gc_blacklist": self.gc_blacklist}


def default_config() -> ClusterConfig:
    return ClusterConfig([["localhost", str(os.cpu_count() or 1)]])


class ConfigError(ValueError):
    """A config table that cannot be applied: ``"invalid config"`` / ``"duplicate nodes"``."""


MAX_NODES = 10_000  # a config table expanding to more hosts is refused


def _digits(text: str, most: int = 18) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= most


def _host(name: str) -> str:
    try:
        return check_host_name(name)
    except UnsafeName as exc:
        raise ConfigError("invalid config: %s" % exc) from None


def expand_host_spec(spec: str) -> list[str]:
    """``node08:12`` -> node08..node12 (zero-padded to the width of ``last``), 3.4.

    Every host must pass ``disco.safenames.check_host_name`` (node names become
    directories of DISCO_DATA); ranges of more than ``MAX_NODES`` hosts are refused.
    """
    if ":" not in spec:
        if not spec:
            raise ConfigError("invalid config")
        return [_host(spec)]
    first, last = spec.split(":", 1)
    width = len(last)
    stem, start = first[:-width], first[-width:]
    if not width or len(first) < width or not _digits(start) or not _digits(last):
        raise ConfigError("invalid config")
    lo, hi = int(start), int(last)
    if hi - lo >= MAX_NODES:
        raise ConfigError("invalid config: more than %d nodes" % MAX_NODES)
    return [_host("%s%0*d" % (stem, width, n)) for n in range(lo, hi + 1)]


def expand_table(rows: list[list[str]]) -> list[tuple[str, int]]:
    """The config table as ``(host, max_workers)``; raises ``ConfigError`` (2.4)."""
    nodes: list[tuple[str, int]] = []
    for row in rows:
        if len(row) != 2 or not _digits(str(row[1]).strip(), 9):
            raise ConfigError("invalid config")
        for host in expand_host_spec(str(row[0])):
            nodes.append((host, int(row[1])))
        if len(nodes) > MAX_NODES:
            raise ConfigError("invalid config: more than %d nodes" % MAX_NODES)
    hosts = [h for h, _ in nodes]
    if len(set(hosts)) != len(hosts):
        raise ConfigError("duplicate nodes")
    return nodes


class StoreReadOnly(sqlite3.OperationalError):
    """A write to a store opened read-only (its disk was full when the master started)."""


class Store:
    """SQLite database ``<master_root>/master.sqlite3`` and the config file.

    On a full disk SQLite may not open the database for writing (WAL mode creates the
    ``-wal`` and ``-shm`` files) or may refuse every write.  The store then opens it
    read-only (``read_only`` says why): reads work, every write raises
    ``StoreReadOnly``; ``try_writable()`` goes back to read-write once there is space.

    ``durable=False`` (a master whose data is deleted when it stops, e.g. an embedded
    master in a temporary directory): the journal is kept in memory and nothing is
    synced to disk; a crash may leave a database that cannot be read, which such a
    master never reads again.  Saves the WAL files and the syncs at start and close.
    """

    def __init__(self, master_root: str, config_file: str, *, durable: bool = True) -> None:
        os.makedirs(master_root, exist_ok=True)
        self.path = os.path.join(master_root, "master.sqlite3")
        self.config_file = config_file
        self.durable = durable
        self.read_only: str | None = None
        try:
            self._db = self._open_writable()
        except sqlite3.Error as exc:
            if not self._out_of_space(exc):
                raise
            self._db = self._open_read_only(exc)

    def _open_writable(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            # WAL with synchronous=NORMAL: a commit is an append to the log, synced at
            # checkpoints; a crash of the master loses nothing, a power cut at most the
            # last commits (the default rollback journal syncs several times per commit).
            if self.durable:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
            else:
                db.execute("PRAGMA journal_mode=MEMORY")
                db.execute("PRAGMA synchronous=OFF")
                # no other connection ever opens it: the file lock is taken once and
                # kept, instead of about 14 lock, stat and read syscalls per commit
                db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.executescript(_SCHEMA)
            # A real write: on a full disk opening may work while every write fails.
            db.execute(
                "INSERT OR REPLACE INTO settings VALUES ('last_start', ?)",
                (json.dumps(time.time()),),
            )
        except BaseException:
            db.close()
            raise
        return db

    def _out_of_space(self, exc: sqlite3.Error) -> bool:
        """Did opening fail because the master's disk is full?"""
        from disco.node.diskspace import MARGIN, free_bytes, is_disk_full

        return is_disk_full(str(exc)) or free_bytes(os.path.dirname(self.path)) < MARGIN

    def _open_read_only(self, cause: sqlite3.Error) -> sqlite3.Connection:
        from disco.node.diskspace import disk_of

        disk, free = disk_of(self.path)
        self.read_only = "the disk of DISCO_MASTER_ROOT is full (%d bytes free): %s" % (free, cause)
        logger.error("master store %s opened read-only (disk %s): %s", self.path, disk, cause)
        wal = self.path + "-wal"
        if not os.path.exists(self.path):  # a new master on a full disk: nothing to read
            db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            db.executescript(_SCHEMA)
            return db
        # With a WAL left by a killed master, SQLite reads through it (read-only); with
        # none (a clean stop), the database file is all there is: immutable, no locks.
        mode = "ro" if os.path.exists(wal) and os.path.getsize(wal) > 0 else "ro&immutable=1"
        uri = "file:%s?mode=%s" % (quote(self.path), mode)
        return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)

    def try_writable(self) -> bool:
        """A read-only store: reopen it read-write if that works now (space is back)."""
        if self.read_only is None:
            return True
        try:
            db = self._open_writable()
        except sqlite3.Error:
            return False
        self._db.close()
        self._db, self.read_only = db, None
        logger.warning("master store is writable again")
        return True

    def _write(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        if self.read_only is not None:
            raise StoreReadOnly("the master is read-only: %s" % self.read_only)
        self._db.execute(sql, params)

    def close(self) -> None:
        self._db.close()

    # -- jobs ---------------------------------------------------------------------------
    def save_job(self, rec: JobRecord) -> None:
        self._write(
            "INSERT OR REPLACE INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                rec.name,
                rec.seq,
                rec.status,
                rec.start,
                rec.owner,
                rec.worker,
                json.dumps(rec.inputs),
                json.dumps(rec.pipeline),
                json.dumps(rec.results),
                json.dumps(rec.stage_results),
                rec.jobpack,
            ),
        )

    def delete_job(self, name: str) -> None:
        self._write("DELETE FROM jobs WHERE name = ?", (name,))
        self._write("DELETE FROM job_failures WHERE name = ?", (name,))
        self.forget_tasks(name)

    # -- finished tasks of running jobs (recovery after a restart) ---------------------------
    def save_tasks(self, tasks: list[DoneTask]) -> None:
        """Append finished tasks, one transaction for the batch (rowid = completion order)."""
        if not tasks:
            return
        if self.read_only is not None:
            raise StoreReadOnly("the master is read-only: %s" % self.read_only)
        rows = [(t.job, t.taskid, t.attempt, t.host, t.signature, _dumps(t.outputs)) for t in tasks]
        if len(rows) == 1:  # the usual case: one statement is its own transaction
            self._db.execute(_INSERT_TASK, rows[0])
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(_INSERT_TASK, rows)

    def load_tasks(self, name: str) -> list[DoneTask]:
        """The job's finished tasks in the order they finished."""
        rows = self._db.execute(
            "SELECT taskid, attempt, host, signature, outputs FROM done_tasks"
            " WHERE job = ? ORDER BY rowid",
            (name,),
        ).fetchall()
        return [DoneTask(name, r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def forget_task(self, name: str, taskid: int) -> None:
        """A finished task runs again (its outputs were lost with a node): its row goes,
        so a restart does not bring the lost outputs back."""
        self._write("DELETE FROM done_tasks WHERE job = ? AND taskid = ?", (name, taskid))

    def forget_tasks(self, name: str) -> None:
        """The job ended (or is gone): its finished tasks are no longer needed."""
        self._write("DELETE FROM done_tasks WHERE job = ?", (name,))

    def save_failures(self, name: str, data: dict[str, Any]) -> None:
        """The job's failed attempts and last failure (``disco.master.failures``)."""
        self._write("INSERT OR REPLACE INTO job_failures VALUES (?, ?)", (name, json.dumps(data)))

    def load_failures(self) -> dict[str, dict[str, Any]]:
        rows = self._db.execute("SELECT name, data FROM job_failures").fetchall()
        return {name: json.loads(data) for name, data in rows}

    def load_jobs(self) -> list[JobRecord]:
        rows = self._db.execute(
            "SELECT name, status, start, owner, worker, inputs, pipeline, results,"
            " stage_results, jobpack, seq FROM jobs ORDER BY seq"
        ).fetchall()
        return [
            JobRecord(
                name=r[0],
                status=r[1],
                start=r[2],
                owner=r[3],
                worker=r[4],
                inputs=json.loads(r[5]),
                pipeline=json.loads(r[6]),
                results=json.loads(r[7]),
                stage_results=json.loads(r[8]),
                jobpack=r[9],
                seq=r[10],
            )
            for r in rows
        ]

    def mark_dead(self, name: str) -> None:
        """A job left ``active`` by a previous run that cannot be restored (13.15)."""
        self._write("UPDATE jobs SET status = 'dead' WHERE name = ?", (name,))
        self.forget_tasks(name)

    # -- settings -------------------------------------------------------------------------
    def get_setting(self, key: str, default: Any) -> Any:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, key: str, value: Any) -> None:
        self._write("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, json.dumps(value)))

    # -- cluster config (3.4) -------------------------------------------------------------
    def load_config(self) -> ClusterConfig:
        """The config file if present (legacy bare lists too), else SQLite, else default."""
        try:
            with open(self.config_file, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            data = self.get_setting("config", None)
            if data is None:
                config = default_config()
                if self.read_only is None:
                    self.save_config(config)
                return config
        except (OSError, ValueError) as exc:
            logger.error("cannot read %s (%s); using the default table", self.config_file, exc)
            return default_config()
        if isinstance(data, list):
            return ClusterConfig(data)
        return ClusterConfig(
            hosts=list(data.get("hosts", [])),
            blacklist=list(data.get("blacklist", [])),
            gc_blacklist=list(data.get("gc_blacklist", [])),
        )

    def save_config(self, config: ClusterConfig) -> None:
        data = config.to_json()
        self.set_setting("config", data)
        directory = os.path.dirname(self.config_file)
        if directory:
            os.makedirs(directory, exist_ok=True)
        tmp = self.config_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.config_file)
