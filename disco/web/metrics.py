"""``GET /metrics``: the master's Prometheus metrics (docs/metrics.md lists them).

Each master has its own ``CollectorRegistry`` (several masters run in one test process),
made by ``MasterMetrics``.  Counters that change with events (task attempts, HTTP
requests) are kept by listeners: the runtime's ``AttemptLog`` and an aiohttp middleware.
Everything else is read from the master's state when scraped (``_StateCollector``).  The
DDFS figures need a walk over every node's files; they are computed in a thread at most
once per ``DDFS_REFRESH`` seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from disco.ddfs.cluster import NodeView
from disco.ddfs.master import DDFSMaster
from disco.master.attempts import Attempt
from disco.master.events import job_dir
from disco.master.runtime import Runtime
from disco.node.dataserver import SERVED, ServedBytes

DDFS_REFRESH = 10.0  # seconds between two walks of the DDFS files
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
JOB_STATUSES = ("active", "ready", "dead")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})


@dataclass
class DDFSFigures:
    tags: int = 0
    blobs: int = 0  # distinct blob ids
    blob_bytes: int = 0  # every replica counted
    replication_backlog: int = 0  # blob ids with fewer replicas than DDFS_BLOB_REPLICAS


async def count_blobs(view: NodeView, replicas: int) -> tuple[int, int, int]:
    """(distinct blobs, bytes of all replicas, blobs short of ``replicas`` copies)."""
    copies: Counter[str] = Counter()
    size = 0
    for host in view.hosts():
        node = view.node(host)
        if node is None:
            continue
        try:
            objects = await node.objects("blob")
        except OSError:
            continue  # a node that does not answer counts as down
        for obj in objects:
            copies[obj.oid] += 1
            size += obj.size
    backlog = sum(1 for n in copies.values() if n < replicas)
    return len(copies), size, backlog


def event_log_bytes(runtime: Runtime) -> int:
    total = 0
    for name in list(runtime.records):
        try:
            total += os.stat(
                os.path.join(job_dir(runtime.config.master_root, name), "events")
            ).st_size
        except OSError:
            continue
    return total


class _StateCollector(Collector):
    """Gauges read from the runtime when Prometheus scrapes."""

    def __init__(self, metrics: MasterMetrics) -> None:
        self.m = metrics

    def collect(self) -> Iterator[Metric]:
        rt = self.m.runtime
        jobs = GaugeMetricFamily(
            "disco_jobs", "Jobs the master knows, by status", labels=["status"]
        )
        statuses = Counter(status for _start, status, _name in rt.joblist())
        for status in JOB_STATUSES:
            jobs.add_metric([status], statuses.get(status, 0))
        yield jobs

        running = GaugeMetricFamily(
            "disco_node_running_tasks", "Task attempts running on the node", labels=["node"]
        )
        slots = GaugeMetricFamily(
            "disco_node_slots", "Slots (max_workers) of the node", labels=["node"]
        )
        free = GaugeMetricFamily(
            "disco_node_free_slots",
            "Slots that could take a task now (0 when blacklisted or disconnected)",
            labels=["node"],
        )
        for host, node in sorted(rt.coordinator.nodes.items()):
            busy = len(rt.coordinator.running_on(host))
            usable = node.connected and not node.blacklisted
            running.add_metric([host], busy)
            slots.add_metric([host], node.max_workers)
            free.add_metric([host], max(0, node.max_workers - busy) if usable else 0)
        yield running
        yield slots
        yield free

        served = CounterMetricFamily(
            "disco_data_served_bytes",
            "Bytes of data files sent by the data servers",
            labels=["node", "area"],
        )
        for node_name, counter in self.m.served_counters():
            for area, count in sorted(counter.by_area.items()):
                served.add_metric([node_name, area], count)
        yield served

        figures = self.m.ddfs_figures
        for name, text, value in (
            ("disco_ddfs_tags", "Live DDFS tags", figures.tags),
            ("disco_ddfs_blobs", "Distinct DDFS blobs stored on the nodes", figures.blobs),
            ("disco_ddfs_blob_bytes", "Bytes of DDFS blobs, every replica", figures.blob_bytes),
            (
                "disco_ddfs_replication_backlog_blobs",
                "DDFS blobs with fewer replicas than DDFS_BLOB_REPLICAS",
                figures.replication_backlog,
            ),
            ("disco_event_log_bytes", "Bytes of the jobs' event log files", self.m.events_bytes),
            ("disco_master_uptime_seconds", "Seconds since the master started", self.m.uptime()),
        ):
            gauge = GaugeMetricFamily(name, text)
            gauge.add_metric([], value)
            yield gauge


class MasterMetrics:
    """The metrics of one master: its registry, listeners and ``/metrics`` handler."""

    def __init__(self, runtime: Runtime, master_served: ServedBytes) -> None:
        self.runtime = runtime
        self.master_served = master_served
        self.ddfs: DDFSMaster | None = None
        self.ddfs_figures = DDFSFigures()
        self.events_bytes = 0
        self._ddfs_at = float("-inf")
        self.ddfs_refresh = DDFS_REFRESH
        self._started = time.monotonic()
        self.registry = CollectorRegistry(auto_describe=True)
        self.tasks_started = PromCounter(
            "disco_tasks_started",
            "Task attempts started",
            ["stage"],
            registry=self.registry,
        )
        self.tasks_finished = PromCounter(
            "disco_tasks_finished",
            "Task attempts that finished (DONE)",
            ["stage"],
            registry=self.registry,
        )
        self.tasks_failed = PromCounter(
            "disco_tasks_failed",
            "Task attempts that failed (retried or fatal)",
            ["stage"],
            registry=self.registry,
        )
        self.task_duration = PromHistogram(
            "disco_task_duration_seconds",
            "Run time of task attempts that ended (done or failed)",
            ["stage", "outcome"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = PromCounter(
            "disco_http_requests",
            "HTTP requests answered by the master, by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.registry.register(_StateCollector(self))
        runtime.attempts.on_start.append(self._attempt_started)
        runtime.attempts.on_end.append(self._attempt_ended)

    # -- listeners --------------------------------------------------------------------------
    def _attempt_started(self, attempt: Attempt) -> None:
        self.tasks_started.labels(attempt.stage).inc()

    def _attempt_ended(self, attempt: Attempt) -> None:
        if attempt.outcome == "done":
            self.tasks_finished.labels(attempt.stage).inc()
        elif attempt.outcome == "failed":
            self.tasks_failed.labels(attempt.stage).inc()
        else:
            return  # killed attempts are neither
        self.task_duration.labels(attempt.stage, attempt.outcome).observe(attempt.duration)

    def served_counters(self) -> list[tuple[str, ServedBytes]]:
        """(node, counter) of the master's own server and each local node's server."""
        found = [("master", self.master_served)]
        by_node = getattr(self.runtime.backend, "served", None)
        if isinstance(by_node, dict):
            found.extend(sorted(by_node.items()))
        return found

    def uptime(self) -> float:
        return time.monotonic() - self._started

    # -- scraping ---------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Recompute the figures that need file system walks (DDFS at most every 10 s)."""
        self.events_bytes = await asyncio.to_thread(event_log_bytes, self.runtime)
        now = time.monotonic()
        if self.ddfs is None or now - self._ddfs_at < self.ddfs_refresh:
            return
        self._ddfs_at = now
        ddfs = self.ddfs
        tags = len(await ddfs.tags.list())
        blobs, size, backlog = await count_blobs(ddfs.view, ddfs.config.blob_replicas)
        self.ddfs_figures = DDFSFigures(tags, blobs, size, backlog)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await self.refresh()
        body = generate_latest(self.registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    def route_label(self, request: web.Request, status: int) -> str:
        """The route's pattern; ``/disco/ctrl/{op}`` names the op unless it was unknown."""
        info = request.match_info
        resource = info.route.resource if info.route is not None else None
        if resource is None:
            return "unmatched"
        pattern = resource.canonical
        op = info.get("op")
        if op is not None and pattern.endswith("/ctrl/{op}") and status != 404:
            return pattern[: -len("{op}")] + op
        return pattern

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            method = request.method if request.method in METHODS else "other"
            route = self.route_label(request, status)
            self.http_requests.labels(method, route, str(status)).inc()


METRICS = web.AppKey("disco_metrics", MasterMetrics)


def served_of(app: web.Application) -> ServedBytes:
    """The app's byte counter (made when missing)."""
    if SERVED not in app:
        app[SERVED] = ServedBytes()
    return app[SERVED]
