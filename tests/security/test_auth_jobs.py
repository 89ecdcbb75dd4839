"""Real jobs keep working when ``DISCO_AUTH_TOKEN`` is set: workers get the token, so
``save_results``, ``tag://`` inputs and OOB ``put``/``get`` pass the check, with reads
open and with ``DISCO_AUTH_READS``."""

from __future__ import annotations

from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from disco.error import CommError
from disco.settings import DiscoSettings
from tests.conftest import _assert_no_leaked_workers, child_pids
from tests.security.helpers import TOKEN, WRONG

pytestmark = pytest.mark.timeout(180)


def word_map(line, params):
    line = line.decode() if isinstance(line, bytes) else line  # blobs give bytes
    put("seen-%s" % line.split()[0], line.strip().encode())  # noqa: F821 - OOB put on the node
    for word in line.split():
        yield word, 1


def sum_reduce(iter, params):
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)
    yield "oob", get("seen-a")  # noqa: F821 - OOB get on the node (a DDFS read)


def token_map(line, params):
    import os

    yield "has-token", os.environ.get("DISCO_AUTH_TOKEN") == line


@pytest.fixture(params=["", "1"], ids=["reads-open", "reads-protected"])
def secured(request, tmp_path) -> Any:
    before = child_pids()
    settings = {
        "DISCO_AUTH_TOKEN": TOKEN,
        "DISCO_AUTH_READS": request.param,
        "DDFS_DELAYED_FLUSH": "0.05",
    }
    nodes = [("localhost", 2), ("127.0.0.2", 2)]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes, settings=settings) as m:
        yield m  # DISCO_AUTH_TOKEN is exported to this process (the client side)
    _assert_no_leaked_workers(before)


def test_word_count_with_ddfs_inputs_oob_and_saved_results(secured) -> None:
    ddfs = DDFS(secured.url)
    ddfs.push("data:words", [(b"a b a\n", "one"), (b"b c a\n", "two")])
    job = Job(master=secured.url).run(
        input=["tag://data:words"], map=word_map, reduce=sum_reduce, save_results=True
    )
    results = job.wait(poll_interval=0.1)
    assert results == ["tag://disco:results:%s" % job.name]  # saved by the node runtime
    got = dict(result_iterator(results))
    assert got == {"a": 3, "b": 2, "c": 1, "oob": b"a b a"}
    assert sorted(job.oob_list()) == ["seen-a", "seen-b"]
    assert ddfs.get("disco:results:%s" % job.name)["urls"]


def test_workers_get_the_token(secured) -> None:
    job = Job(master=secured.url).run(input=["raw://" + TOKEN], map=token_map)
    assert list(result_iterator(job.wait(poll_interval=0.1))) == [("has-token", True)]


def test_a_client_with_a_wrong_token_cannot_submit(secured) -> None:
    before = secured.disco.joblist()
    wrong = DiscoSettings(DISCO_AUTH_TOKEN=WRONG)
    with pytest.raises(CommError) as info:
        Job(master=secured.url, settings=wrong).run(input=["raw://x"], map=token_map)
    assert info.value.code == 401 and "X-Disco-Auth-Token" in str(info.value)
    assert secured.disco.joblist() == before


def test_the_token_does_not_follow_a_redirect_elsewhere(tmp_path) -> None:
    """A cluster URL that redirects to another host does not hand the token over."""
    import asyncio
    import threading

    from aiohttp import web

    from disco import auth, comm

    seen: dict[str, Any] = {}
    loop = asyncio.new_event_loop()

    async def elsewhere(request: web.Request) -> web.Response:
        seen["elsewhere"] = request.headers.get(auth.HEADER)
        return web.Response(text="moved data")

    async def cluster(request: web.Request) -> web.Response:
        seen["cluster"] = request.headers.get(auth.HEADER)
        raise web.HTTPFound("http://127.0.0.2:%d/x" % ports[1])

    async def serve() -> list[web.AppRunner]:
        runners = []
        for host, handler in (("127.0.0.1", cluster), ("127.0.0.2", elsewhere)):
            app = web.Application()
            app.router.add_get("/{tail:.*}", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, host, 0)
            await site.start()
            ports.append(site._server.sockets[0].getsockname()[1])
            runners.append(runner)
        return runners

    ports: list[int] = []
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners = asyncio.run_coroutine_threadsafe(serve(), loop).result(10)
    try:
        resp = comm.raw_request(
            "GET", "http://127.0.0.1:%d/data" % ports[0], headers={auth.HEADER: TOKEN}
        )
        assert resp.body == b"moved data"
        assert seen == {"cluster": TOKEN, "elsewhere": None}
    finally:
        for runner in runners:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
