"""Helpers shared by the master's route tables: app keys, parameters, JSON bodies.

Shape errors use the 2.4 wording (``"string expected, '42' received"``); missing query
parameters and bad JSON bodies are 400s with a JSON string message (13.5).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from disco.master.errors import MasterError, bad_request
from disco.master.runtime import Runtime
from disco.safenames import UnsafeName, check_job_name

RUNTIME = web.AppKey("disco_runtime", Runtime)
MAX_JSON_BODY = 32 * 1024 * 1024  # 11.5


def runtime(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def json_response(value: Any, *, content_type: str = "application/json") -> web.Response:
    return web.Response(text=json.dumps(value, separators=(",", ":")), content_type=content_type)


def param(request: web.Request, key: str) -> str:
    value = request.query.get(key)
    if value is None or value == "":
        raise bad_request("missing parameter '%s'" % key)
    return value


def job_name(request: web.Request) -> str:
    """The ``name`` parameter; names that are no job name are a 400 (13.5)."""
    return valid(check_job_name, param(request, "name"))


def valid(check: Any, value: Any) -> Any:
    """``check(value)`` (a ``disco.safenames`` check), its ``UnsafeName`` as a 400."""
    try:
        return check(value)
    except UnsafeName as exc:
        raise bad_request(str(exc))


async def json_body(request: web.Request) -> Any:
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise MasterError(413, "Request body too large")
    data = await request.read()
    if len(data) > MAX_JSON_BODY:
        raise MasterError(413, "Request body too large")
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("invalid JSON body")
    except RecursionError:
        raise bad_request("invalid JSON body: nested too deeply")


def shown(value: Any) -> str:
    """``value`` as JSON for an error text, cut short (bodies may be large or deep)."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        text = "..."
    return text if len(text) <= 200 else text[:200] + "..."


def expect_string(value: Any) -> str:
    if not isinstance(value, str):
        raise bad_request("string expected, '%s' received" % shown(value))
    return value


def expect_list(value: Any, length: int | None = None) -> list[Any]:
    if not isinstance(value, list) or (length is not None and len(value) != length):
        what = "list" if length is None else "list of length %d" % length
        raise bad_request("%s expected, '%s' received" % (what, shown(value)))
    return value


def expect_int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise bad_request("non-negative integer expected, '%s' received" % shown(value))
    return value
