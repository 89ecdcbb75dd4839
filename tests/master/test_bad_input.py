"""Bad input never gets a 500 (issue 8.5): the known cases, against a real master.

Every case answers a 4xx with a short reason (or the 0.5 answer) and no server path.
The suite-wide check (``no_server_errors`` in tests/conftest.py) fails any test during
which a server answered 500; ``test_a_crash_is_a_logged_500_that_fails_the_suite``
shows that the check sees one.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import web

from disco.master.api import ctrl
from disco.servererrors import SERVER_ERRORS, guard
from tests.conftest import poll_for
from tests.rawhttp import send_raw

from .packs import make_pack, v2_dict

DEEP = b"[" * 3000 + b"]" * 3000
DEEP_OBJECT = b'{"a":' * 3000 + b"1" + b"}" * 3000


def request(m, path, method="GET", body=None, headers=None, port=None, host="127.0.0.1"):
    return send_raw(port or m.port, method, path, body, headers, host)


def no_path(m, body: bytes) -> bool:
    return m.root.encode() not in body and b"/tmp/" not in body


@pytest.mark.parametrize("op", sorted(ctrl.POST_OPS))
@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT], ids=["list", "object"])
def test_deeply_nested_json_on_every_post_op_is_400(master, op, body):
    status, text = request(master, "/disco/ctrl/" + op, "POST", body)
    assert status == 400 and json.loads(text).startswith("invalid JSON body"), (op, text)


def test_deeply_nested_json_on_ddfs_and_job_submission(master):
    for path, method in [
        ("/ddfs/tag/t:deep", "PUT"),
        ("/ddfs/tag/t:deep", "POST"),
        ("/ddfs/tag/t:deep/attr", "PUT"),
        ("/ddfs/ctrl/hosted_tags", "POST"),
    ]:
        status, text = request(master, path, method, DEEP)
        assert 400 <= status < 500, (path, status, text)
    pack = make_pack(v2_dict([], []))
    deep = pack[:128] + b"[" * 3000  # a jobdict nested too deeply (header offsets kept)
    status, text = request(master, "/disco/job/new", "POST", deep + pack[128 + 3000 :])
    assert status == 200 and json.loads(text)[0] == "error"


def test_lone_surrogate_as_a_job_name_is_400(master):
    body = b'"\\ud800"'
    for op in ("kill_job", "clean_job", "purge_job"):
        status, text = request(master, "/disco/ctrl/" + op, "POST", body)
        assert status == 400 and json.loads(text) == "invalid job name: not valid Unicode"
    status, text = request(master, "/disco/ctrl/get_results", "POST", b'[0, ["\\ud800"]]')
    assert status == 200 and json.loads(text) == [["\ud800", ["unknown job", []]]]
    for op in ("blacklist", "gc_whitelist"):
        assert request(master, "/disco/ctrl/" + op, "POST", body)[0] == 400
    assert request(master, "/disco/ctrl/save_config_table", "POST", b'[["\\udcff", "1"]]')[0] == 400
    for q in ("%ED%A0%80", "%ff"):  # a lone surrogate in UTF-8, not UTF-8 at all
        assert request(master, "/disco/ctrl/jobinfo?name=" + q)[0] == 400
    pack = make_pack(v2_dict([], [], owner="\ud800"))
    status, text = request(master, "/disco/job/new", "POST", pack)
    assert status == 200 and json.loads(text)[0] == "error"
    status, text = request(master, "/ddfs/tag/t:s", "PUT", b'[["\\ud800"]]')
    assert status == 403


def test_huge_range_on_rawevents_answers_no_new_bytes(master):
    pack = make_pack(v2_dict([], [[0, 0, ["raw://x"]]]))
    status, text = request(master, "/disco/job/new", "POST", pack)
    name = json.loads(text)[1]
    poll_for(lambda: request(master, "/disco/ctrl/rawevents?name=" + name)[0] == 200, 20)
    for value in ("bytes=" + "9" * 5000 + "-", "bytes=" + "1" * 4000 + "-" + "2" * 4000):
        status, body = request(
            master, "/disco/ctrl/rawevents?name=" + name, headers={"Range": value}
        )
        assert (status, body) == (200, b"")
    for value in ("bytes=-" + "9" * 5000, "bytes=0-" + "9" * 5000, "bytes=x-y", "bytes=5-1"):
        status, _ = request(master, "/disco/ctrl/rawevents?name=" + name, headers={"Range": value})
        assert status in (200, 206), value
    data = master.server.config.disco_data
    with open(data + "/localhost-file", "wb") as f:
        f.write(b"data")
    for value in ("bytes=" + "9" * 5000 + "-", "bytes=-" + "9" * 5000, "bytes=0-" + "9" * 5000):
        status, _ = request(master, "/disco/localhost-file", headers={"Range": value})
        assert status in (200, 206), value
    assert request(master, "/disco/ctrl/jobevents?name=%s&num=%s" % (name, "9" * 5000))[0] == 400


def test_blob_put_long_name_and_repeat_have_no_path_and_no_500(master):
    put = master.server.config.put_port
    long_name = "b" * 255 + "$6a4-1-2"
    status, body = request(master, "/ddfs/" + long_name, "PUT", b"x", port=put)
    assert (status, body) == (403, b"Invalid blob name")
    name = "b" * 200 + "$6a4-1-2"  # the longest a new_blob prefix can be, plus its TS
    assert request(master, "/ddfs/" + name, "PUT", b"x", port=put)[0] == 201
    status, body = request(master, "/ddfs/" + name, "PUT", b"y", port=put)
    assert (status, body) == (409, b"File exists")
    assert no_path(master, body)


def test_long_tag_names_are_refused_not_500(master):
    for n in (201, 300, 511):
        status, body = request(master, "/ddfs/tag/" + "t" * n, "PUT", b'[["x"]]')
        assert (status, body) == (403, b"Invalid tag")
    assert request(master, "/ddfs/tag/" + "t" * 300)[0] == 404  # reading: not found


def test_config_table_and_settings_edge_values(master):
    cases = [
        ("save_config_table", [["node1:99999999", "1"]]),
        ("save_config_table", [["node1:" + "9" * 5000, "1"]]),
        ("save_config_table", [["localhost", "9" * 5000]]),
        ("save_config_table", [["localhost", "²"]]),
        ("save_settings", {"max_failure_rate": "9" * 5000}),
        ("save_settings", {"max_failure_rate": [[[]]]}),
        ("get_results", [10**400, ["x"]]),
    ]
    for op, value in cases:
        status, body = request(master, "/disco/ctrl/" + op, "POST", json.dumps(value).encode())
        assert status < 500 and len(body) < 400, (op, status, body[:100])
    assert master.disco.config and request(master, "/disco/ctrl/get_settings")[0] == 200


@pytest.mark.server_errors_expected
def test_a_crash_is_a_logged_500_that_fails_the_suite(caplog):
    """A handler that raises gets ``500 Internal server error`` (no detail), it is
    logged, and ``SERVER_ERRORS`` counts it, which fails a test without the marker."""

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("/secret/server/path")

    async def main() -> tuple[int, bytes]:
        app = guard(web.Application())
        app.router.add_get("/boom", boom)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await asyncio.to_thread(
                lambda: request(None, "/boom", port=port)  # type: ignore[arg-type]
            )
        finally:
            await runner.cleanup()

    before = SERVER_ERRORS.count
    assert asyncio.run(main()) == (500, b"Internal server error")
    assert SERVER_ERRORS.since(before) == ["GET /boom"]
    assert "/secret/server/path" in caplog.text  # logged for the operator, not sent
