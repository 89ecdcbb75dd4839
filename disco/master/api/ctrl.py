"""``/disco/ctrl/<op>``: the control operations of master-api.md 2.3 (GET) and 2.4 (POST).

Unknown ops, and GETs of POST-only ops (and the reverse), answer 404 (1.3).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from disco.backends.channel import BadMessage, ChannelClosed, parse_request
from disco.ddfs.api import DDFS
from disco.master.api.common import (
    expect_int,
    expect_list,
    expect_string,
    job_name,
    json_body,
    json_response,
    param,
    runtime,
    shown,
    valid,
)
from disco.master.errors import MasterError, bad_request, not_found
from disco.master.events import jobevents as render_jobevents
from disco.master.runtime import Runtime
from disco.master.store import ClusterConfig, ConfigError
from disco.safenames import UnsafeName, check_host_name, check_job_name, check_stage_name

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GET_OPS: dict[str, Handler] = {}
POST_OPS: dict[str, Handler] = {}

routes = web.RouteTableDef()


def get_op(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        GET_OPS[name] = fn
        return fn

    return register


def post_op(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        POST_OPS[name] = fn
        return fn

    return register


@routes.route("*", "/disco/ctrl/{op}")
async def ctrl(request: web.Request) -> web.StreamResponse:
    table = {"GET": GET_OPS, "POST": POST_OPS}.get(request.method, {})
    handler = table.get(request.match_info["op"])
    if handler is None:
        raise not_found()
    return await handler(request)


# -- GET (2.3) ----------------------------------------------------------------------------
@get_op("joblist")
async def joblist(request: web.Request) -> web.StreamResponse:
    return json_response(runtime(request).joblist())


@get_op("jobinfo")
async def jobinfo(request: web.Request) -> web.StreamResponse:
    info = runtime(request).jobinfo(job_name(request))
    if info is None:
        raise not_found()
    return json_response(info)


@get_op("jobevents")
async def jobevents(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    name = job_name(request)
    try:
        num = _small_int(request.query.get("num", "10"))
    except ValueError:
        raise bad_request("integer expected for 'num'")
    log = rt.logs.get(name)
    path = os.path.join(_job_dir(rt, name), "events")
    tail = list(log.tail) if log is not None else None
    body = render_jobevents(path, tail, num, request.query.get("filter", ""))
    return web.Response(text=body, content_type="text/plain")


async def _serve_master_file(request: web.Request, filename: str) -> web.StreamResponse:
    """A file of the job's master directory, with Range (4.3; never 416, 13.3)."""
    rt = runtime(request)
    path = os.path.join(_job_dir(rt, job_name(request)), filename)
    try:
        size = os.stat(path).st_size
    except OSError:
        raise not_found()
    value = request.headers.get(hdrs.RANGE, "").strip()
    start = _range_start(value)
    if start is not None and start >= size:
        return web.Response(status=200, body=b"", content_type="text/plain")  # 13.3
    if start is not None and _huge_end(value):
        # an end no file reaches (and too long a number to hand on): from start to the end
        body = await asyncio.get_running_loop().run_in_executor(None, _read, path)
        response = web.Response(status=206, body=body[start:], content_type="text/plain")
        response.headers[hdrs.CONTENT_RANGE] = "bytes %d-%d/%d" % (start, size - 1, size)
        return response
    asked = hdrs.RANGE in request.headers
    if value.replace(" ", "") == "bytes=0-" or (asked and start is None):
        # 4.3: bytes=0- is the whole file (200); several ranges (multipart, which no
        # client asks for) also get the whole file rather than 416 (13.3).
        body = await asyncio.get_running_loop().run_in_executor(None, _read, path)
        return web.Response(body=body, content_type="text/plain")
    # FileResponse honours Range and If-Modified-Since from the request (1.2).
    return web.FileResponse(path, headers={hdrs.CONTENT_TYPE: "text/plain"})


def _small_int(text: str) -> int:
    """A decimal integer of at most 18 digits (longer ones are refused, not parsed)."""
    text = text.strip()
    if len(text.lstrip("+-")) > 18:
        raise ValueError(text[:20])
    return int(text)


def _job_dir(rt: Runtime, name: str) -> str:
    """The job's master directory, refused (400) if it resolves outside the master root."""
    return valid(rt.job_dir, name)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _range_start(value: str) -> int | None:
    """The first byte of a single ``bytes=<start>-[<end>]`` range, else ``None`` (no
    Range, several, suffix, reversed or malformed ones: the whole file is sent, 13.3)."""
    if not value.startswith("bytes=") or "," in value:
        return None
    first, _, last = (p.strip() for p in value[len("bytes=") :].partition("-"))
    if not _digits(first) or not (last == "" or _digits(last)):
        return None
    start = int(first) if len(first) <= 18 else 1 << 62  # past the end of any file
    if last and len(last) <= 18 and int(last) < start:
        return None
    return start


def _huge_end(value: str) -> bool:
    return len(value.partition("-")[2].strip()) > 18


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


@get_op("rawevents")
async def rawevents(request: web.Request) -> web.StreamResponse:
    return await _serve_master_file(request, "events")


@get_op("parameters")
async def parameters(request: web.Request) -> web.StreamResponse:
    return await _serve_master_file(request, "jobfile")


@get_op("get_stageresults")
async def get_stageresults(request: web.Request) -> web.StreamResponse:
    name = job_name(request)
    stage = valid(check_stage_name, param(request, "stage"))
    results = runtime(request).stage_results(name, stage)
    if results is None:
        raise not_found()
    return json_response(results)


@get_op("task_attempts")
async def task_attempts(request: web.Request) -> web.StreamResponse:
    """Every attempt of the job's tasks, for the UI's timeline (an addition beyond 0.5)."""
    rt = runtime(request)
    name = job_name(request)
    if name not in rt.records:
        raise not_found()
    attempts = [a.to_json() for a in rt.attempts.of(name)]
    return json_response({"now": rt.clock(), "attempts": attempts})


@get_op("master_config")
async def master_config(request: web.Request) -> web.StreamResponse:
    """The master's and DDFS's typed settings (the web UI; an addition beyond 0.5)."""
    ddfs = request.app.get(DDFS)
    return json_response(
        {
            "master": dataclasses.asdict(runtime(request).config),
            "ddfs": dataclasses.asdict(ddfs.config) if ddfs is not None else {},
        }
    )


@get_op("nodeinfo")
async def nodeinfo(request: web.Request) -> web.StreamResponse:
    return json_response(await runtime(request).nodeinfo())


@get_op("load_config_table")
async def load_config_table(request: web.Request) -> web.StreamResponse:
    return json_response(await runtime(request).reload_config())


@get_op("get_blacklist")
async def get_blacklist(request: web.Request) -> web.StreamResponse:
    return json_response(runtime(request).cluster.blacklist)


@get_op("get_gc_blacklist")
async def get_gc_blacklist(request: web.Request) -> web.StreamResponse:
    return json_response(runtime(request).cluster.gc_blacklist)


@get_op("get_settings")
async def get_settings(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    return json_response(
        {"max_failure_rate": rt.max_failure_rate, "accept_new_jobs": rt.accept_new_jobs}
    )


# -- POST (2.4) ---------------------------------------------------------------------------
@post_op("get_results")
async def get_results(request: web.Request) -> web.StreamResponse:
    body = expect_list(await json_body(request), 2)
    timeout = min(expect_int(body[0]), MAX_RESULTS_TIMEOUT_MS)
    names = [expect_string(n) for n in expect_list(body[1])]
    rt = runtime(request)
    known = [n for n in names if _is_job_name(n)]
    answers = dict((n, s) for n, s in await rt.wait_results(timeout, known))
    # a name that cannot be a job is an unknown job, as 0.5 answers (2.4)
    return json_response([[n, answers.get(n, ["unknown job", []])] for n in names])


MAX_RESULTS_TIMEOUT_MS = 24 * 3600 * 1000


def _is_job_name(name: str) -> bool:
    try:
        check_job_name(name)
    except UnsafeName:
        return False
    return True


async def _job_name_body(request: web.Request) -> str:
    """The JSON string body of kill/clean/purge, a valid job name (else 400)."""
    return valid(check_job_name, expect_string(await json_body(request)))


@post_op("kill_job")
async def kill_job(request: web.Request) -> web.StreamResponse:
    runtime(request).kill(await _job_name_body(request))
    return json_response("")


@post_op("clean_job")
async def clean_job(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    name = await _job_name_body(request)
    valid(rt.job_dir, name)  # refused before anything changes (symlinks out of the root)
    await rt.clean(name)
    return json_response("")


@post_op("purge_job")
async def purge_job(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    name = await _job_name_body(request)
    valid(rt.job_dir, name)  # refused before anything changes (symlinks out of the root)
    rt.kill(name)  # stop it now; the rest runs in the background (2.4)
    task = asyncio.get_running_loop().create_task(rt.purge(name))
    request.app[BACKGROUND].add(task)
    task.add_done_callback(request.app[BACKGROUND].discard)
    return json_response("")


BACKGROUND = web.AppKey("disco_ctrl_background", set)


def _listing(which: str, listed: bool) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        host = valid(check_host_name, expect_string(await json_body(request)))
        await runtime(request).set_listed(which, host, listed)
        return json_response("")

    return handler


post_op("blacklist")(_listing("blacklist", True))
post_op("whitelist")(_listing("blacklist", False))
post_op("gc_blacklist")(_listing("gc_blacklist", True))
post_op("gc_whitelist")(_listing("gc_blacklist", False))


@post_op("save_config_table")
async def save_config_table(request: web.Request) -> web.StreamResponse:
    rows = expect_list(await json_body(request))
    table = []
    for row in rows:
        row = expect_list(row, 2)
        table.append([expect_string(row[0]), expect_string(row[1])])
    rt = runtime(request)
    config = ClusterConfig(table, list(rt.cluster.blacklist), list(rt.cluster.gc_blacklist))
    try:
        await rt.check_config(config)
        await rt.apply_config(config)
    except ConfigError as exc:
        raise bad_request(str(exc))
    return json_response("table saved!")


@post_op("save_settings")
async def save_settings(request: web.Request) -> web.StreamResponse:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise bad_request("object expected, '%s' received" % shown(body))
    values: dict[str, int | None] = {"max_failure_rate": None, "accept_new_jobs": None}
    for key in values:
        if key in body:
            try:
                values[key] = _small_int(str(body[key]))
            except ValueError:
                raise bad_request(
                    "integer expected for '%s', '%s' received" % (key, shown(body[key]))
                )
    runtime(request).save_settings(values["max_failure_rate"], values["accept_new_jobs"])
    return json_response("Settings saved")


@post_op("task_channel")
async def task_channel(request: web.Request) -> web.StreamResponse:
    """[Not in 0.5] A node's message to its task attempt (``disco.backends.channel``)."""
    try:
        message = parse_request(await json_body(request))
    except BadMessage as exc:
        raise bad_request(str(exc))
    try:
        reply = await runtime(request).channels.call(message)
    except ChannelClosed as exc:
        raise MasterError(404, str(exc))
    return json_response(reply)
