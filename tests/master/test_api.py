"""The master's REST API (master-api.md 1-3) against a real master with real workers.

Each test starts a master with ``start_master`` (through ``EmbeddedMaster``) on
127.0.0.1 port 0 with the real ``LocalBackend``; jobs are hand-built packs whose job
home holds a POSIX sh worker (``packs.py``), so a non-Python worker runs too.
"""

from __future__ import annotations

import http.client
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from disco.embedded import EmbeddedMaster
from disco.master.events import hash_dir
from tests.conftest import child_pids, poll_for

from .packs import make_pack, v1_dict, v2_dict

MAP_REDUCE = [["map", "split", False], ["reduce", "group_label", False]]


class Client:
    def __init__(self, m: EmbeddedMaster) -> None:
        self.m = m
        self.url = m.url

    def request(self, path: str, body: bytes | None = None, headers: dict | None = None):
        req = urllib.request.Request(self.url + path, data=body, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def get(self, path: str, **kw):
        status, _, body = self.request(path, **kw)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def post(self, op: str, value: object):
        status, _, body = self.request("/disco/ctrl/" + op, json.dumps(value).encode())
        assert status == 200, (op, status, body)
        return json.loads(body)

    def submit(self, jobdict: dict, jobenvs: dict | None = None, version: int = 2) -> str:
        status, _, body = self.request(
            "/disco/job/new", make_pack(jobdict, jobenvs, version=version)
        )
        assert status == 200
        reply = json.loads(body)
        assert reply[0] == "ok", reply
        return reply[1]

    def wait(self, name: str, timeout: float = 20.0) -> list:
        def finished():
            [[_, (status, results)]] = self.post("get_results", [1000, [name]])
            return (status, results) if status != "active" else None

        return list(poll_for(finished, timeout, "job %s to finish" % name))

    def events(self, name: str) -> list[list[str]]:
        status, _, body = self.request("/disco/ctrl/rawevents?name=" + name)
        assert status == 200
        return [json.loads(line) for line in body.decode().splitlines()]


@pytest.fixture
def client(tmp_path) -> Iterator[Client]:
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", export_env=False, retry_delay=0.0) as m:
        yield Client(m)
        m.call(lambda: m.server.runtime.coordinator.validate())
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


def test_version_and_proxy_prefix(client):
    assert client.get("/disco/version") == "0.5.4"
    # 1.2: /disco and /ddfs responses close the connection, and say so
    for path in ("/disco/version", "/disco/ctrl/joblist", "/ddfs/tags", "/disco/nothing"):
        conn = http.client.HTTPConnection("127.0.0.1", client.m.port, timeout=10)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        assert response.getheader("Connection") == "close", path
        assert response.will_close, path
        conn.close()
    assert client.get("/proxy/node1/GET/disco/version") == "0.5.4"
    assert client.get("/proxy/node1/GET/disco/ctrl/get_settings")["max_failure_rate"] == 100
    status, headers, body = client.request("/disco/version", b"x")
    assert (status, body) == (404, b"Not found.")
    status, _, body = client.request("/proxy/n1/PUT/disco/ctrl/kill_job", b'"Nope@1:2:3"')
    assert (status, json.loads(body)) == (200, "")


def test_map_reduce_job_end_to_end(client):
    name = client.submit(
        v2_dict(MAP_REDUCE, [[0, 0, ["raw://a"]], [1, 0, "raw://b"]]), {"LABELS": "2"}
    )
    assert name.startswith("Test@")
    status, results = client.wait(name)
    assert status == "ready"
    assert len(results) == 2 and all(len(entry) == 1 for entry in results)
    hh = hash_dir(name)
    prefix = "dir://localhost/disco/localhost/%s/%s/.disco/reduce-" % (hh, name)
    assert all(entry[0].startswith(prefix) for entry in results)
    # the index file is served as node data from the master (2.5)
    path = results[0][0][len("dir://localhost/") :]
    status, headers, body = client.request("/" + path)
    assert status == 200 and headers["Content-Type"] == "application/octet-stream"
    label, url, size = body.decode().splitlines()[0].split()
    assert label == "0" and url.startswith("disco://localhost/disco/localhost/%s/%s/" % (hh, name))
    info = client.get("/disco/ctrl/jobinfo?name=" + name)
    assert info["active"] == "ready"
    assert info["pipeline"] == [["map", 0, 0, 0, 2, 0], ["reduce", 0, 0, 0, 2, 0]]
    assert info["results"] == [r[0] for r in results]
    assert info["inputs"] == ["raw://a", "raw://b"]
    assert (info["worker"], info["owner"], info["hosts"]) == ("worker.sh", "tester@host", [])
    assert len(info["timestamp"]) == 19
    stage = client.get("/disco/ctrl/get_stageresults?name=%s&stage=map" % name)
    assert len(stage) == 2 and stage[0][0].startswith("dir://localhost/")
    joblist = client.get("/disco/ctrl/joblist")
    assert joblist[0][1:] == ["ready", name] and isinstance(joblist[0][0], int)
    messages = [e[2] for e in client.events(name)]
    assert messages[:3] == [
        "New job initialized!",
        'Created job "%s"' % name,
        "Stage map scheduled with 2 tasks",
    ]
    assert "MSG: [map:0] inputs of map:0" in messages
    assert messages[-1].startswith("READY: Job done in ")
    status, _, pack = client.request("/disco/ctrl/parameters?name=" + name)
    assert status == 200 and pack[:4] == b"\xd5\xc0\x00\x02"
    nodes = client.get("/disco/ctrl/nodeinfo")
    assert nodes["localhost"]["job_ok"] == 4 and nodes["localhost"]["connected"] is True
    assert "tasks" not in nodes["localhost"] and nodes["localhost"]["diskfree"] > 0


def test_rawevents_ranges_and_jobevents(client):
    name = client.submit(v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]))
    client.wait(name)
    status, _, whole = client.request("/disco/ctrl/rawevents?name=" + name)
    first = whole.index(b"\n") + 1
    status, headers, body = client.request(
        "/disco/ctrl/rawevents?name=" + name, headers={"Range": "bytes=%d-" % first}
    )
    assert status == 206 and body == whole[first:]
    status, _, body = client.request(
        "/disco/ctrl/rawevents?name=" + name, headers={"Range": "bytes=0-"}
    )
    assert (status, body) == (200, whole)
    status, _, body = client.request(
        "/disco/ctrl/rawevents?name=" + name, headers={"Range": "bytes=%d-" % len(whole)}
    )
    assert status in (200, 206) and body == b""  # 13.3: never 416
    # a bounded range is a bounded range, also one that starts at 0 (only bytes=0- is 200)
    status, headers, body = client.request(
        "/disco/ctrl/rawevents?name=" + name, headers={"Range": "bytes=0-9"}
    )
    assert (status, body) == (206, whole[:10])
    assert headers["Content-Range"] == "bytes 0-9/%d" % len(whole)
    # several ranges (multipart, never used by clients): the whole file, not 416
    status, _, body = client.request(
        "/disco/ctrl/rawevents?name=" + name, headers={"Range": "bytes=0-3,5-8"}
    )
    assert (status, body) == (200, whole)
    # the stored job pack is served the same way (2.3 parameters: file semantics)
    _, _, pack = client.request("/disco/ctrl/parameters?name=" + name)
    status, _, head = client.request(
        "/disco/ctrl/parameters?name=" + name, headers={"Range": "bytes=0-3"}
    )
    assert (status, head) == (206, pack[:4])
    status, _, tail = client.request(
        "/disco/ctrl/parameters?name=" + name, headers={"Range": "bytes=128-"}
    )
    assert (status, tail) == (206, pack[128:])
    status, headers, body = client.request("/disco/ctrl/jobevents?name=%s&num=2" % name)
    assert headers["Content-Type"].startswith("text/plain")
    newest = json.loads(body)
    assert len(newest) == 2 and newest[0][2].startswith("READY:")
    matches = json.loads(client.request("/disco/ctrl/jobevents?name=%s&filter=STAGE" % name)[2])
    assert [m[2][:18] for m in matches] == ["Stage map finished", "Stage map schedule"]
    # 2.3: characters outside the conservative set (here the space) are dropped
    assert json.loads(client.request("/disco/ctrl/jobevents?name=%s&filter=st+age" % name)[2])
    assert json.loads(client.request("/disco/ctrl/jobevents?name=%s&filter=zzz" % name)[2]) == []
    assert json.loads(client.request("/disco/ctrl/jobevents?name=Unknown@1:2:3")[2]) == []
    assert client.request("/disco/ctrl/rawevents?name=Unknown@1:2:3")[0] == 404
    assert client.request("/disco/ctrl/parameters?name=Unknown@1:2:3")[0] == 404


def test_submit_errors(client):
    status, _, body = client.request("/disco/job/new", b"\x00" * 200)
    assert (status, json.loads(body)) == (200, ["error", 'Job failed to start: "invalid header"'])
    jobdict = v2_dict([], [])
    del jobdict["owner"]
    reply = json.loads(client.request("/disco/job/new", make_pack(jobdict))[2])
    assert reply == ["error", "Job failed to start: \"jobpack missing key 'owner'\""]
    reply = json.loads(
        client.request("/disco/job/new", make_pack(v2_dict([], [], prefix="a.b")))[2]
    )
    assert reply == ["error", 'Job failed to start: "invalid prefix"']
    assert client.request("/disco/job/new")[0] == 404  # GET
    # 413 before the body is read
    conn = http.client.HTTPConnection("127.0.0.1", client.m.port, timeout=10)
    conn.putrequest("POST", "/disco/job/new")
    conn.putheader("Content-Length", str(1024**3 + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert (response.status, response.read()) == (413, b"Job packet too large")
    conn.close()
    assert client.post("save_settings", {"accept_new_jobs": "0"}) == "Settings saved"
    status, _, body = client.request("/disco/job/new", make_pack(v2_dict([], [])))
    assert (status, body) == (403, b"No new jobs should be submitted to this cluster.")
    assert client.get("/disco/ctrl/get_settings") == {"max_failure_rate": 100, "accept_new_jobs": 0}


def test_job_start_reply_timeout(client, monkeypatch):
    """2.2: a job not started within the reply timeout (60 s; 0 here) is refused with
    the 0.5 text, no job is created, and the master keeps serving."""
    from disco.master.api import jobs

    monkeypatch.setattr(jobs, "START_TIMEOUT", 0.0)
    jobdict = v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]])
    status, _, body = client.request("/disco/job/new", make_pack(jobdict))
    assert (status, json.loads(body)) == (
        200,
        ["error", 'Job failed to start: "timed out after 60s (master busy?)"'],
    )
    assert client.get("/disco/ctrl/joblist") == []
    monkeypatch.setattr(jobs, "START_TIMEOUT", 60.0)
    assert client.wait(client.submit(jobdict))[0] == "ready"


def test_failing_task_retries_until_the_limit(client):
    client.post("save_settings", {"max_failure_rate": "2"})
    name = client.submit(
        v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"MODE": "error"}
    )
    assert client.wait(name) == ["dead", []]
    messages = [e[2] for e in client.events(name)]
    assert messages.count("WARNING: [map:0] failing on purpose") == 3
    assert "ERROR: [map:0] Task map:0 failed 3 times. At most 2 failures are allowed." in messages
    assert client.get("/disco/ctrl/jobinfo?name=" + name)["pipeline"] == [["map", 0, 1, 0, 0, 3]]
    assert client.get("/disco/ctrl/nodeinfo")["localhost"]["data_error"] == 3


def test_flaky_task_succeeds_on_retry_and_crash_is_an_error(client):
    name = client.submit(
        v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"MODE": "flaky"}
    )
    assert client.wait(name)[0] == "ready"
    assert client.get("/disco/ctrl/jobinfo?name=" + name)["pipeline"] == [["map", 0, 0, 0, 1, 1]]
    client.post("save_settings", {"max_failure_rate": "0"})
    name = client.submit(
        v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"MODE": "crash"}
    )
    assert client.wait(name)[0] == "dead"
    assert any("Worker crashed! (exit code: 3)" in e[2] for e in client.events(name))


def test_fatal_kills_the_job(client):
    name = client.submit(
        v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]], [0, 0, ["raw://b"]]]),
        {"MODE": "fatal"},
    )
    assert client.wait(name) == ["dead", []]
    assert any(
        e[2] == "FATAL: [map:0] fatal on purpose" or e[2] == "FATAL: [map:1] fatal on purpose"
        for e in client.events(name)
    )


def test_kill_clean_and_purge(client):
    inputs = [[0, 0, ["raw://a"]], [0, 0, ["raw://b"]]]
    idle = child_pids()
    name = client.submit(v2_dict([["map", "split", False]], inputs), {"MODE": "sleep"})
    poll_for(
        lambda: len(client.get("/disco/ctrl/nodeinfo")["localhost"].get("tasks", [])) == 2,
        10,
        "2 running tasks",
    )
    assert client.get("/disco/ctrl/jobinfo?name=" + name)["hosts"] == ["localhost", "localhost"]
    workers = poll_for(
        lambda: (child_pids() - idle) if len(child_pids() - idle) == 2 else None, 10, "2 workers"
    )
    assert client.post("kill_job", name) == ""
    assert client.post("get_results", [0, [name]]) == [[name, ["dead", []]]]
    poll_for(lambda: not (child_pids() & workers), 1.0, "workers killed within 1 s")
    assert client.events(name)[-1][2] == "WARN: Job killed"
    assert client.post("kill_job", "Nope@1:2:3") == ""
    master_dir = os.path.join(client.m.server.config.master_root, hash_dir(name), name)
    assert os.path.isdir(master_dir)
    assert client.post("clean_job", name) == ""
    assert not os.path.exists(master_dir)
    assert client.request("/disco/ctrl/jobinfo?name=" + name)[0] == 404
    assert client.post("get_results", [0, [name]]) == [[name, ["unknown job", []]]]
    assert name not in [row[2] for row in client.get("/disco/ctrl/joblist")]
    # purge also deletes the job's data on the nodes
    name = client.submit(v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]))
    client.wait(name)
    data_dir = os.path.join(client.m.server.config.disco_data, "localhost", hash_dir(name), name)
    assert os.path.isdir(data_dir)
    assert client.post("purge_job", name) == ""
    poll_for(lambda: not os.path.exists(data_dir), 5, "job data to be purged")
    assert client.request("/disco/ctrl/jobinfo?name=" + name)[0] == 404


def test_get_results_long_poll(client):
    name = client.submit(
        v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"MODE": "sleep"}
    )
    reply = client.post("get_results", [50, [name, "Gone@1:2:3"]])
    assert reply == [[name, ["active", []]], ["Gone@1:2:3", ["unknown job", []]]]
    client.post("kill_job", name)


def test_bad_requests(client):
    def error(path, body=None):
        status, _, data = client.request(path, body)
        return status, json.loads(data) if status == 400 else data

    assert error("/disco/ctrl/jobinfo") == (400, "missing parameter 'name'")
    assert error("/disco/ctrl/jobevents") == (400, "missing parameter 'name'")
    assert error("/disco/ctrl/jobevents?name=x&num=abc")[0] == 400
    assert error("/disco/ctrl/get_stageresults?name=x") == (400, "missing parameter 'stage'")
    assert error("/disco/ctrl/get_stageresults?name=x&stage=map") == (404, b"Not found.")
    assert error("/disco/ctrl/jobinfo?name=../../etc")[0] == 400
    assert error("/disco/ctrl/rawevents?name=..") == (
        400,
        "invalid job name: only letters, digits and _-@: are allowed",
    )
    assert error("/disco/ctrl/rawevents?name=Gone@1:2:3") == (404, b"Not found.")
    assert error("/disco/ctrl/kill_job", b"42") == (400, "string expected, '42' received")
    assert error("/disco/ctrl/kill_job", b"{not json")[0] == 400
    assert error("/disco/ctrl/get_results", b"[1]")[0] == 400
    assert error("/disco/ctrl/get_results", b'[-1, ["x"]]')[0] == 400
    assert error("/disco/ctrl/get_results", b"[1, [3]]") == (400, "string expected, '3' received")
    assert error("/disco/ctrl/save_settings", b'{"max_failure_rate": "x"}')[0] == 400
    assert error("/disco/ctrl/save_config_table", b'[["a", 2]]') == (
        400,
        "string expected, '2' received",
    )
    # 1.2: JSON bodies up to 32 MiB are read (beyond aiohttp's 1 MiB default) ...
    big = json.dumps([0, ["x" * 100] * 21000]).encode()
    assert len(big) > 2 * 1024 * 1024
    assert error("/disco/ctrl/get_results", big)[0] == 200
    # ... and a larger one is refused before it is read
    conn = http.client.HTTPConnection("127.0.0.1", client.m.port, timeout=10)
    conn.putrequest("POST", "/disco/ctrl/kill_job")
    conn.putheader("Content-Length", str(32 * 1024 * 1024 + 1))
    conn.endheaders()
    assert conn.getresponse().status == 413
    conn.close()
    assert error("/disco/ctrl/nosuchop") == (404, b"Not found.")
    assert error("/disco/ctrl/get_results") == (404, b"Not found.")  # GET of a POST op
    assert error("/disco/ctrl/joblist", b"1") == (404, b"Not found.")  # POST of a GET op
    assert error("/disco/no/such/file") == (404, b"Not found.")
    assert error("/nothing-here.html") == (404, b"Not found.")


def test_config_table_blacklists_and_settings(client):
    assert client.get("/disco/ctrl/load_config_table") == [["localhost", str(os.cpu_count() or 1)]]
    # the local backend takes this machine's names only (issue 12.8): loopback addresses
    table = [["localhost", "2"], ["127.0.0.8", "1"], ["127.0.0.9", "1"], ["127.0.0.10", "1"]]
    assert client.post("save_config_table", table) == "table saved!"
    assert client.get("/disco/ctrl/load_config_table") == table
    with open(client.m.server.config.config_file) as f:
        assert json.load(f) == {"hosts": table, "blacklist": [], "gc_blacklist": []}
    status, _, body = client.request("/disco/ctrl/save_config_table", b'[["a", "1"], ["a", "2"]]')
    assert (status, json.loads(body)) == (400, "duplicate nodes")
    status, _, body = client.request("/disco/ctrl/save_config_table", b'[["a", "x"]]')
    assert (status, json.loads(body)) == (400, "invalid config")
    assert client.post("blacklist", "127.0.0.9") == ""
    assert client.post("blacklist", "unknown-host") == ""
    assert client.get("/disco/ctrl/get_blacklist") == ["127.0.0.9"]
    assert client.post("gc_blacklist", "127.0.0.10") == ""
    assert client.get("/disco/ctrl/get_gc_blacklist") == ["127.0.0.10"]
    nodes = client.get("/disco/ctrl/nodeinfo")
    assert sorted(nodes) == ["127.0.0.10", "127.0.0.8", "127.0.0.9", "localhost"]
    assert nodes["127.0.0.9"]["blacklisted"] is True and nodes["127.0.0.8"]["max_workers"] == 1
    assert client.post("whitelist", "127.0.0.9") == ""
    assert client.post("gc_whitelist", "127.0.0.10") == ""
    assert (
        client.get("/disco/ctrl/get_blacklist") == [] == client.get("/disco/ctrl/get_gc_blacklist")
    )
    client.post("blacklist", "127.0.0.8")
    client.post("save_config_table", [["localhost", "2"]])  # blacklists are pruned
    assert client.get("/disco/ctrl/get_blacklist") == []
    client.post("save_settings", {"max_failure_rate": "7", "unknown": "1"})
    assert client.get("/disco/ctrl/get_settings") == {"max_failure_rate": 7, "accept_new_jobs": 1}


def test_classic_job_with_dir_input(client):
    first = client.submit(
        v2_dict([["map", "split", False]], [[0, 0, ["raw://a"]]]), {"LABELS": "3"}
    )
    [[index]] = client.wait(first)[1]
    name = client.submit(
        v1_dict([index], **{"reduce?": False}), version=1
    )  # map:split over a dir:// input: one task per label, then map_shuffle:group_node
    status, results = client.wait(name)
    assert status == "ready"
    info = client.get("/disco/ctrl/jobinfo?name=" + name)
    assert info["pipeline"] == [["map", 0, 0, 0, 3, 0], ["map_shuffle", 0, 0, 0, 1, 0]]
    assert info["inputs"] == []  # 3.1 quirk: v1 dir:// inputs are omitted
    assert len(results) == 1
    bad = client.submit(v1_dict(["dir://localhost/disco/localhost/00/None/x.results"]), version=1)
    assert client.wait(bad)[0] == "dead"


def test_concurrent_stage_with_more_inputs(client):
    pipeline = [["map", "split", False], ["reduce", "group_all", True]]
    inputs = [[0, 0, ["raw://%d" % i]] for i in range(3)]
    name = client.submit(v2_dict(pipeline, inputs), {"MODE": "more"})
    status, results = client.wait(name)
    assert status == "ready" and len(results) == 1
    path = results[0][0][len("dir://localhost/") :]
    index = client.request("/" + path)[2].decode().split()
    data = client.request("/" + index[1][len("disco://localhost/") :])[2]
    assert data.count(b'"ok"') == 3  # the reduce task saw all three map outputs


def test_static_files_and_ddfs_paths(client):
    www = client.m.server.config.www_root
    os.makedirs(os.path.join(www, "css"), exist_ok=True)
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<html>disco</html>")
    status, headers, body = client.request("/")
    assert (status, body) == (200, b"<html>disco</html>")
    assert headers["Content-Type"].startswith("text/html")
    assert client.request("/css")[0] in (301, 404)  # redirected to /css/ (no index there)
    assert client.request("/../etc/passwd")[:3:2] == (404, b"Not found.")
    assert client.request("/ddfs/tags")[:3:2] == (200, b"[]")  # served by disco.ddfs.api
