"""``GET /metrics``: the master's Prometheus metrics (docs/metrics.md lists them).

Each master has its own ``CollectorRegistry`` (several masters run in one test process),
made by ``MasterMetrics`` at the first scrape: ``prometheus_client`` is imported then, not
when the master starts (issue 13: a tiny job's process never scrapes).  Counters that
change with events (task attempts, HTTP requests) are plain counts kept by listeners (the
runtime's ``AttemptLog`` and an aiohttp middleware) and exposed as Prometheus counters and
a histogram when scraped, like everything read from the master's state
(``_collect_state``).  The DDFS figures need a walk over every node's files; they are
computed in a thread at most once per ``DDFS_REFRESH`` seconds.
"""

from __future__ import annotations

import asyncio
import bisect
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

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


def _collect_state(m: MasterMetrics) -> Iterator[Any]:
    """Gauges read from the runtime when Prometheus scrapes."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    rt = m.runtime
    jobs = GaugeMetricFamily("disco_jobs", "Jobs the master knows, by status", labels=["status"])
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
    for node_name, counter in m.served_counters():
        for area, count in sorted(counter.by_area.items()):
            served.add_metric([node_name, area], count)
    yield served

    figures = m.ddfs_figures
    for name, text, value in (
        ("disco_ddfs_tags", "Live DDFS tags", figures.tags),
        ("disco_ddfs_blobs", "Distinct DDFS blobs stored on the nodes", figures.blobs),
        ("disco_ddfs_blob_bytes", "Bytes of DDFS blobs, every replica", figures.blob_bytes),
        (
            "disco_ddfs_replication_backlog_blobs",
            "DDFS blobs with fewer replicas than DDFS_BLOB_REPLICAS",
            figures.replication_backlog,
        ),
        ("disco_event_log_bytes", "Bytes of the jobs' event log files", m.events_bytes),
        ("disco_master_uptime_seconds", "Seconds since the master started", m.uptime()),
    ):
        gauge = GaugeMetricFamily(name, text)
        gauge.add_metric([], value)
        yield gauge


def _collect_counts(m: MasterMetrics) -> Iterator[Any]:
    """The task and request counters and the task duration histogram."""
    from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily

    for name, text, counts in (
        ("disco_tasks_started", "Task attempts started", m.tasks_started),
        ("disco_tasks_finished", "Task attempts that finished (DONE)", m.tasks_finished),
        ("disco_tasks_failed", "Task attempts that failed (retried or fatal)", m.tasks_failed),
    ):
        family = CounterMetricFamily(name, text, labels=["stage"])
        for stage, n in sorted(counts.items()):
            family.add_metric([stage], n)
        yield family
    durations = HistogramMetricFamily(
        "disco_task_duration_seconds",
        "Run time of task attempts that ended (done or failed)",
        labels=["stage", "outcome"],
    )
    for (stage, outcome), (counts, total) in sorted(m.task_durations.items()):
        cumulative, buckets = 0, []
        for bound, n in zip((*DURATION_BUCKETS, float("inf")), counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
        durations.add_metric([stage, outcome], buckets, total)
    yield durations
    requests = CounterMetricFamily(
        "disco_http_requests",
        "HTTP requests answered by the master, by route and status",
        labels=["method", "route", "status"],
    )
    for key, n in sorted(m.http_requests.items()):
        requests.add_metric(list(key), n)
    yield requests


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
        self.registry: Any = None  # a prometheus_client CollectorRegistry, at the first scrape
        self.tasks_started: Counter[str] = Counter()
        self.tasks_finished: Counter[str] = Counter()
        self.tasks_failed: Counter[str] = Counter()
        # (stage, outcome) -> (count per bucket of DURATION_BUCKETS and +Inf, sum)
        self.task_durations: dict[tuple[str, str], tuple[list[int], float]] = {}
        self.http_requests: Counter[tuple[str, str, str]] = Counter()
        runtime.attempts.on_start.append(self._attempt_started)
        runtime.attempts.on_end.append(self._attempt_ended)

    # -- listeners --------------------------------------------------------------------------
    def _attempt_started(self, attempt: Attempt) -> None:
        self.tasks_started[attempt.stage] += 1

    def _attempt_ended(self, attempt: Attempt) -> None:
        if attempt.outcome == "done":
            self.tasks_finished[attempt.stage] += 1
        elif attempt.outcome == "failed":
            self.tasks_failed[attempt.stage] += 1
        else:
            return  # killed attempts are neither
        key = (attempt.stage, attempt.outcome)
        counts, total = self.task_durations.get(key) or ([0] * (len(DURATION_BUCKETS) + 1), 0.0)
        counts[bisect.bisect_left(DURATION_BUCKETS, attempt.duration)] += 1  # le: upper bound
        self.task_durations[key] = (counts, total + attempt.duration)

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

    def _registry(self) -> Any:
        if self.registry is None:
            from prometheus_client import CollectorRegistry
            from prometheus_client.registry import Collector

            metrics = self

            class _Collector(Collector):
                def collect(self) -> Iterator[Any]:
                    yield from _collect_counts(metrics)
                    yield from _collect_state(metrics)

            self.registry = CollectorRegistry(auto_describe=True)
            self.registry.register(_Collector())
        return self.registry

    async def handle(self, request: web.Request) -> web.StreamResponse:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        await self.refresh()
        body = generate_latest(self._registry())
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
            self.http_requests[(method, route, str(status))] += 1


METRICS = web.AppKey("disco_metrics", MasterMetrics)


def served_of(app: web.Application) -> ServedBytes:
    """The app's byte counter (made when missing)."""
    if SERVED not in app:
        app[SERVED] = ServedBytes()
    return app[SERVED]
