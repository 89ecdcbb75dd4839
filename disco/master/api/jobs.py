"""``POST /disco/job/new``: job submission (master-api.md 2.2).

413 for packs over 1 GiB, 403 when the cluster refuses new jobs, otherwise always 200
with ``["ok", name]`` or ``["error", "Job failed to start: <reason>"]``.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import web

from disco.master.api.common import json_response, runtime
from disco.master.errors import MasterError, not_found
from disco.master.jobpack import JobPackError
from disco.safenames import UnsafeName

logger = logging.getLogger(__name__)

MAX_JOBPACK = 1024 * 1024 * 1024  # 11.5: 1 GiB
START_TIMEOUT = 60.0  # 11.5: job start reply timeout

routes = web.RouteTableDef()


@routes.route("*", "/disco/job/{tail:.*}")
async def job_new(request: web.Request) -> web.StreamResponse:
    if request.method != "POST":
        raise not_found()
    rt = runtime(request)
    length = request.content_length
    if length is not None and length > MAX_JOBPACK:
        raise MasterError(413, "Job packet too large")
    if not rt.accept_new_jobs:
        raise MasterError(403, "No new jobs should be submitted to this cluster.")
    data = await request.read()
    if len(data) > MAX_JOBPACK:
        raise MasterError(413, "Job packet too large")
    try:
        name = await asyncio.wait_for(rt.submit(data), START_TIMEOUT)
    except JobPackError as exc:
        logger.info("job refused: %s", exc.reason)
        return json_response(["error", "Job failed to start: %s" % exc.reason])
    except UnsafeName as exc:  # e.g. a symlink out of the master root where the job goes
        logger.warning("job refused: %s", exc)
        return json_response(["error", "Job failed to start: %s" % json.dumps(str(exc))])
    except TimeoutError:
        return json_response(["error", 'Job failed to start: "timed out after 60s (master busy?)"'])
    return json_response(["ok", name])
