"""``DISCO_AUTH_TOKEN`` against a real master with two nodes: every request that changes
something needs the ``X-Disco-Auth-Token`` header; without it (or with a wrong one, or in
another header) the answer is 401 and nothing changes; reads are open unless
``DISCO_AUTH_READS`` is set; the token never lands in a job pack."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest

from disco import auth
from disco.core import Disco
from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from disco.error import CommError
from disco.settings import DiscoSettings
from tests.client.shjobs import BLOCKING_WORKER, jobpack
from tests.conftest import _assert_no_leaked_workers, child_pids, poll_for
from tests.security.helpers import TOKEN, WRONG, http

pytestmark = pytest.mark.timeout(120)

NODES = [("localhost", 1), ("127.0.0.2", 1)]


def secured_master(root: Any, **settings: str) -> EmbeddedMaster:
    return EmbeddedMaster(
        root=root,
        nodes=NODES,
        settings={"DISCO_AUTH_TOKEN": TOKEN, "DDFS_DELAYED_FLUSH": "0.05", **settings},
        retry_delay=0.0,
    )


@pytest.fixture
def secured(tmp_path) -> Any:
    before = child_pids()
    with secured_master(tmp_path / "disco") as m:
        yield m
    _assert_no_leaked_workers(before)


@pytest.fixture
def secured_reads(tmp_path) -> Any:
    before = child_pids()
    with secured_master(tmp_path / "disco", DISCO_AUTH_READS="1") as m:
        yield m
    _assert_no_leaked_workers(before)


def ok_client(master: EmbeddedMaster) -> Disco:
    return Disco(master.url, settings=DiscoSettings(DISCO_AUTH_TOKEN=TOKEN))


def data_url(master: EmbeddedMaster, url: str) -> str:
    """``disco://host/path`` (or ``dir://``) -> ``http://host:DISCO_PORT/path``."""
    host, path = url.split("://", 1)[1].split("/", 1)
    return "http://%s:%d/%s" % (host, master.port, path)


def blob_files(master: EmbeddedMaster) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(os.path.join(master.root, "ddfs")):
        found.extend(os.path.join(dirpath, f) for f in files if "/blob/" in dirpath + "/")
    return sorted(found)


def snapshot(master: EmbeddedMaster, jobs: list[str]) -> dict[str, Any]:
    """Everything the refused requests could have changed, read with the token."""
    disco = ok_client(master)
    ddfs = DDFS(master.url, settings=DiscoSettings(DISCO_AUTH_TOKEN=TOKEN))
    return {
        "joblist": sorted((status, name) for _t, status, name in disco.joblist()),
        "jobs": {name: disco.jobinfo(name)["active"] for name in jobs},
        "config": disco.config,
        "blacklist": disco._json("/disco/ctrl/get_blacklist"),
        "gc_blacklist": disco._json("/disco/ctrl/get_gc_blacklist"),
        "settings": disco._json("/disco/ctrl/get_settings"),
        "tags": ddfs.list(),
        "tag": ddfs.get("t:one"),
        "gc": ddfs._json("GET", master.url + "/ddfs/ctrl/gc_status"),
        "blobs": blob_files(master),
    }


def setup_state(master: EmbeddedMaster) -> tuple[str, str, list[str]]:
    """A finished job, a running job, tag ``t:one`` with one blob and an attribute."""
    disco = ok_client(master)
    done = disco.submit(jobpack(map=True))
    running = disco.submit(jobpack(BLOCKING_WORKER, map=True, prefix="Blocker"))
    poll_for(lambda: disco.jobinfo(done)["active"] == "ready", 30, "the job to finish")
    poll_for(lambda: disco.jobinfo(running)["active"] == "active", 30, "the job to run")
    ddfs = DDFS(master.url, settings=DiscoSettings(DISCO_AUTH_TOKEN=TOKEN))
    ddfs.push("t:one", [(b"payload\n", "blob-one")])
    ddfs.setattr("t:one", "colour", "blue")
    # upload URLs on both nodes' DDFS_PUT_PORT servers
    status, body = http("GET", master.url + "/ddfs/new_blob/anon?replicas=2", token=TOKEN)
    assert status == 200
    return done, running, json.loads(body)


def write_requests(master: EmbeddedMaster, done: str, running: str, puts: list[str]) -> list:
    url = master.url
    one = json.dumps([["disco://localhost/ddfs/vol0/blob/00/x$1-2-3"]])
    return [
        ("POST", url + "/disco/job/new", jobpack()),
        ("POST", url + "/disco/ctrl/kill_job", json.dumps(running)),
        ("POST", url + "/proxy/localhost/POST/disco/ctrl/kill_job", json.dumps(running)),
        ("POST", url + "/disco/ctrl/clean_job", json.dumps(done)),
        ("POST", url + "/disco/ctrl/purge_job", json.dumps(done)),
        ("POST", url + "/disco/ctrl/save_settings", json.dumps({"max_failure_rate": "7"})),
        ("POST", url + "/disco/ctrl/save_config_table", json.dumps([["localhost", "9"]])),
        ("POST", url + "/disco/ctrl/blacklist", json.dumps("127.0.0.2")),
        ("POST", url + "/disco/ctrl/whitelist", json.dumps("127.0.0.2")),
        ("POST", url + "/disco/ctrl/gc_blacklist", json.dumps("127.0.0.2")),
        ("POST", url + "/ddfs/tag/t:one", one),
        ("POST", url + "/ddfs/tag/t:new", one),
        ("PUT", url + "/ddfs/tag/t:one", one),
        ("PUT", url + "/ddfs/tag/t:one/colour", json.dumps("red")),
        ("PUT", url + "/ddfs/tag/t:one/ddfs:read-token", json.dumps("mine")),
        ("DELETE", url + "/ddfs/tag/t:one/colour", None),
        ("DELETE", url + "/ddfs/tag/t:one", None),
        ("GET", url + "/ddfs/ctrl/gc_start", None),
        *[("PUT", put, b"anonymous blob") for put in puts],  # both nodes' upload servers
    ]


def test_writes_need_the_token_and_refusals_change_nothing(secured) -> None:
    done, running, puts = setup_state(secured)
    assert {p.split("/")[2].split(":")[0] for p in puts} == {"localhost", "127.0.0.2"}
    before = snapshot(secured, [done, running])
    basic = "Basic " + base64.b64encode(("token:" + TOKEN).encode()).decode()
    attempts: list[dict[str, str] | None] = [
        None,  # no header at all
        {auth.HEADER: WRONG},
        {auth.HEADER: ""},
        {auth.HEADER: TOKEN + "x"},
        {auth.HEADER: TOKEN[:-1]},
        {"Authorization": "Bearer " + TOKEN},  # only X-Disco-Auth-Token counts
        {"Authorization": basic},  # a DDFS tag token is not the cluster's token
    ]
    for method, url, body in write_requests(secured, done, running, puts):
        for headers in attempts:
            status, text = http(method, url, body, headers=headers)
            assert status == 401, (method, url, headers, status, text)
            assert text.decode() == auth.UNAUTHORIZED
    assert snapshot(secured, [done, running]) == before

    # the same requests with the token do their work
    disco = ok_client(secured)
    assert http("POST", secured.url + "/disco/ctrl/kill_job", json.dumps(running), TOKEN)[0] == 200
    poll_for(lambda: disco.jobinfo(running)["active"] == "dead", 30, "the kill")
    status, _ = http(
        "POST", secured.url + "/disco/ctrl/save_settings", '{"max_failure_rate":"7"}', TOKEN
    )
    assert status == 200 and disco._json("/disco/ctrl/get_settings")["max_failure_rate"] == 7
    status, body = http("PUT", secured.url + "/ddfs/tag/t:one/colour", '"red"', TOKEN)
    assert status == 200
    assert DDFS(secured.url).getattr("t:one", "colour") == "red"
    for put in puts:
        status, body = http("PUT", put, b"with token", TOKEN)
        assert status == 201, body
    assert len(blob_files(secured)) == len(before["blobs"]) + 2
    status, body = http("POST", secured.url + "/disco/job/new", jobpack(), TOKEN)
    assert status == 200 and json.loads(body)[0] == "ok"
    assert http("POST", secured.url + "/disco/ctrl/purge_job", json.dumps(done), TOKEN)[0] == 200
    poll_for(lambda: done not in [n for _t, _s, n in disco.joblist()], 30, "the purge")


def test_reads_stay_open_by_default(secured) -> None:
    done, running, _puts = setup_state(secured)
    url = secured.url
    for path in (
        "/disco/version",
        "/disco/ctrl/joblist",
        "/disco/ctrl/jobinfo?name=" + done,
        "/disco/ctrl/nodeinfo",
        "/ddfs/tags",
        "/ddfs/tag/t:one",
    ):
        assert http("GET", url + path)[0] == 200, path
    status, body = http("POST", url + "/disco/ctrl/get_results", json.dumps([0, [done]]))
    assert status == 200 and json.loads(body)[0][1][0] == "ready"
    status, body = http("GET", data_url(secured, DDFS(url).urls("t:one")[0][0]))
    assert (status, body) == (200, b"payload\n")  # a node data server's /ddfs/
    ok_client(secured).kill(running)


def test_reads_protected_with_disco_auth_reads(secured_reads) -> None:
    master = secured_reads
    done, running, _puts = setup_state(master)
    url = master.url
    ddfs = DDFS(url, settings=DiscoSettings(DISCO_AUTH_TOKEN=TOKEN))
    # a blob stored on the other node, served by that node's own data server
    replicas = ddfs.push_blob(b"on node two\n", "two", replicas=1, forceon=["127.0.0.2"])
    node_blob = data_url(master, replicas[0])
    assert node_blob.startswith("http://127.0.0.2:")  # that node's own data server
    replicas = ddfs.push_blob(b"on node one\n", "one", replicas=1, forceon=["localhost"])
    master_blob = data_url(master, replicas[0])  # served by the master
    index = data_url(master, ok_client(master).results(done)[1][0][0])
    reads = [
        url + "/disco/ctrl/joblist",
        url + "/disco/ctrl/jobinfo?name=" + done,
        url + "/ddfs/tags",
        url + "/ddfs/tag/t:one",
        url + "/ddfs/new_blob/x",
        url + "/js",  # not a file of the page shell (tests/security/test_auth_web.py)
        master_blob,
        node_blob,
        index,
    ]
    for target in reads:
        for headers in (None, {auth.HEADER: WRONG}):
            assert http("GET", target, headers=headers)[0] == 401, target
        assert http("GET", target, token=TOKEN)[0] in (200, 404), target
    assert http("GET", node_blob, token=TOKEN)[1] == b"on node two\n"
    assert http("GET", url + "/disco/version")[0] == 200  # the health check stays open
    assert http("POST", url + "/disco/ctrl/get_results", json.dumps([0, [done]]))[0] == 401
    # the library sends the token: tags, blobs and results read as usual
    assert [f.read() for f in ddfs.pull("t:one")] == [b"payload\n"]
    with pytest.raises(CommError) as info:
        Disco(url, settings=DiscoSettings(DISCO_AUTH_TOKEN=WRONG)).joblist()
    assert info.value.code == 401
    ok_client(master).kill(running)


def test_the_token_is_not_in_job_packs(secured) -> None:
    """Pickled settings travel in job packs, which /disco/ctrl/parameters serves."""
    from disco.core import Job
    from tests.security.test_binding import count_map

    settings = DiscoSettings(DISCO_AUTH_TOKEN=TOKEN)
    job = Job(master=ok_client(secured), settings=settings).run(input=["raw://x"], map=count_map)
    job.wait(poll_interval=0.1)
    status, pack = http("GET", secured.url + "/disco/ctrl/parameters?name=" + job.name, token=TOKEN)
    assert status == 200 and len(pack) > 100
    assert TOKEN.encode() not in pack


def test_tokens_are_compared_in_constant_time(monkeypatch) -> None:
    import hmac  # imported by ``accepts`` when it compares (a lean fork base)

    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    policy = auth.AuthPolicy(TOKEN)
    assert policy.accepts({auth.HEADER: TOKEN}) and not policy.accepts({auth.HEADER: WRONG})
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (WRONG.encode(), TOKEN.encode())]
    assert TOKEN not in repr(policy)
