"""``GET /metrics``: scraped during and after a real job, parsed with prometheus_client."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from disco.core import Disco, Job
from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from disco.web import METRICS
from tests.conftest import environ_without_disco, poll_for, run_python
from tests.web import jobfuncs

pytestmark = pytest.mark.timeout(180)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url + "/metrics") as resp:
        assert resp.headers["Content-Type"].startswith("text/plain; version=")
        text = resp.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def fresh_ddfs_figures(master: EmbeddedMaster) -> None:
    """Walk DDFS at every scrape (the master does it at most every 10 s)."""
    master.server.runner.app[METRICS].ddfs_refresh = 0.0


def test_metrics_during_and_after_a_job(master: EmbeddedMaster, tmp_path) -> None:
    fresh_ddfs_figures(master)
    disco = Disco(master.url)
    running = Job(master=master.url, name="Slow").run(input=["raw://s"], map=jobfuncs.chatty_map)
    poll_for(lambda: disco.jobinfo(running.name)["hosts"], 60, "the running task")
    during = scrape(master.url)
    assert value(during, "disco_jobs", status="active") == 1
    assert value(during, "disco_node_running_tasks", node="localhost") == 1
    slots = value(during, "disco_node_slots", node="localhost")
    assert value(during, "disco_node_free_slots", node="localhost") == slots - 1
    assert value(during, "disco_tasks_started_total", stage="map") == 1
    assert value(during, "disco_master_uptime_seconds") > 0
    assert value(during, "disco_event_log_bytes") > 0
    route = {"method": "POST", "route": "/disco/job/{tail}", "status": "200"}
    assert value(during, "disco_http_requests_total", **route) == 1
    disco.kill(running.name)

    ready = Job(master=master.url, name="Words").run(
        input=["raw://a b", "raw://c"], map=jobfuncs.word_map, reduce=jobfuncs.count_reduce
    )
    ready.wait()
    dead = Job(master=master.url, name="Bad").run(input=["raw://boom"], map=jobfuncs.bad_map)
    poll_for(lambda: disco.jobinfo(dead.name)["active"] == "dead", 60, "the failing job")
    # fetch a result file over HTTP: bytes served by the master's data server
    result = disco.jobinfo(ready.name)["results"][0]
    path = result.split("/", 3)[3]
    with urllib.request.urlopen("%s/%s" % (master.url, path)) as resp:
        size = len(resp.read())
    ddfs = DDFS(master.url)
    ddfs.push("metrics:tag", [(b"x" * 1000, "blob_a"), (b"y" * 24, "blob_b")])

    after = scrape(master.url)
    assert value(after, "disco_jobs", status="ready") == 1
    assert value(after, "disco_jobs", status="dead") == 2
    assert value(after, "disco_tasks_finished_total", stage="map") == 2
    assert value(after, "disco_tasks_finished_total", stage="reduce") == 1
    assert value(after, "disco_tasks_failed_total", stage="map") == 1
    assert value(after, "disco_task_duration_seconds_count", stage="map", outcome="done") == 2
    assert value(after, "disco_task_duration_seconds_count", stage="map", outcome="failed") == 1
    assert (
        value(after, "disco_task_duration_seconds_bucket", stage="map", outcome="done", le="+Inf")
        == 2
    )
    # cumulative buckets, as a Prometheus histogram has them; the sum is the total duration
    done = dict(stage="map", outcome="done")
    bounds = ["0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "30.0", "60.0", "120.0"]
    cumulative = [value(after, "disco_task_duration_seconds_bucket", le=b, **done) for b in bounds]
    assert cumulative == sorted(cumulative) and cumulative[-1] == 2
    assert 0 < value(after, "disco_task_duration_seconds_sum", **done) < 120
    assert value(after, "disco_data_served_bytes_total", node="master", area="disco") >= size > 0
    assert value(after, "disco_ddfs_tags") == 1
    assert value(after, "disco_ddfs_blobs") == 2
    assert value(after, "disco_ddfs_blob_bytes") == 1024
    assert value(after, "disco_ddfs_replication_backlog_blobs") == 0
    events = 0
    for name in (running.name, ready.name, dead.name):
        with urllib.request.urlopen(master.url + "/disco/ctrl/rawevents?name=" + name) as r:
            events += len(r.read())
    assert value(after, "disco_event_log_bytes") == events
    ok = {"method": "GET", "route": "/disco/ctrl/jobinfo", "status": "200"}
    assert value(after, "disco_http_requests_total", **ok) >= 3
    assert total(after, "disco_http_requests_total") > total(during, "disco_http_requests_total")


def test_replication_backlog_and_separate_registries(tmp_path) -> None:
    nodes = [("localhost", 1), ("127.0.0.2", 1)]
    settings = {"DDFS_BLOB_REPLICAS": "2"}
    with (
        EmbeddedMaster(root=tmp_path / "a", nodes=nodes, settings=settings, export_env=False) as a,
        EmbeddedMaster(root=tmp_path / "b", export_env=False) as b,
    ):
        fresh_ddfs_figures(a)
        DDFS(a.url).push("two:copies", [(b"data", "d")])
        [entry] = DDFS(a.url).get("two:copies")["urls"]
        assert len(entry) == 2
        host = entry[1].split("/")[2]
        blob = os.path.join(a.server.backend.ddfs_root(host), entry[1].split("/ddfs/", 1)[1])
        os.chmod(blob, 0o600)
        os.remove(blob)  # one replica lost: GC would copy it again
        samples = scrape(a.url)
        assert value(samples, "disco_ddfs_blobs") == 1
        assert value(samples, "disco_ddfs_replication_backlog_blobs") == 1
        # the other master in this process has its own registry
        other = scrape(b.url)
        assert value(other, "disco_ddfs_blobs") == 0
        assert (
            value(other, "disco_http_requests_total", method="GET", route="/metrics", status="200")
            == 0
        )


def test_task_attempts_endpoint(master: EmbeddedMaster) -> None:
    job = Job(master=master.url, name="Two").run(
        input=["raw://a", "raw://b"], map=jobfuncs.word_map
    )
    job.wait()
    with urllib.request.urlopen(master.url + "/disco/ctrl/task_attempts?name=" + job.name) as r:
        data: Any = json.loads(r.read())
    attempts = data["attempts"]
    assert sorted((a["stage"], a["taskid"]) for a in attempts) == [
        ("map", 0),
        ("map", 1),
        ("map_shuffle", 2),
    ]
    for a in attempts:
        assert a["outcome"] == "done" and a["host"] == "localhost" and a["attempt"] == 1
        assert a["start"] <= a["end"] <= data["now"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(master.url + "/disco/ctrl/task_attempts?name=Nope@1:2:3")
    assert err.value.code == 404


def test_pages_are_served_on_the_master_port(master: EmbeddedMaster) -> None:
    for page in ("/", "/job.html", "/nodes.html", "/ddfs.html", "/settings.html", "/js/common.js"):
        with urllib.request.urlopen(master.url + page) as resp:
            assert resp.status == 200
    with urllib.request.urlopen(master.url + "/") as resp:
        assert b"<title>Disco: jobs</title>" in resp.read()


def test_prometheus_client_is_imported_at_the_first_scrape_only() -> None:
    """A master that is never scraped (a tiny job's process) does not import it."""
    code = (
        "import sys, urllib.request\n"
        "from disco.embedded import EmbeddedMaster\n"
        "with EmbeddedMaster() as m:\n"
        "    print('prometheus_client' in sys.modules)\n"
        "    urllib.request.urlopen(m.url + '/metrics').read()\n"
        "    print('prometheus_client' in sys.modules)\n"
    )
    out = run_python("-c", code, cwd=os.getcwd(), env=environ_without_disco(), timeout=60)
    assert out.split() == ["False", "True"]
