"""The master's web UI and Prometheus metrics, mounted on the master's own app.

``mount(app, runtime)`` adds ``GET /metrics`` (``metrics.py``), the HTTP request counting
middleware, and the static pages (``pages.py``, files in ``static/``) as the catch-all
route, which must stay last.  The pages are plain HTML/CSS/JS that read the master's JSON
control endpoints (``/disco/ctrl/...``, ``/ddfs/...``); see docs/web-ui.md.
"""

from __future__ import annotations

from aiohttp import web

from disco.master.runtime import Runtime
from disco.web import pages
from disco.web.metrics import METRICS, MasterMetrics, served_of

__all__ = ["METRICS", "MasterMetrics", "mount"]


def mount(app: web.Application, runtime: Runtime) -> MasterMetrics:
    """Add ``/metrics``, the request counter and the pages to ``app`` (call last)."""
    metrics = MasterMetrics(runtime, served_of(app))
    app[METRICS] = metrics
    app.middlewares.insert(0, metrics.middleware)  # outermost: sees the final status
    app.router.add_get("/metrics", metrics.handle)
    app.add_routes(pages.routes)
    return metrics
