"""The Jobs list and the Job page in chromium, against a real master and real jobs."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.conftest import poll_for
from tests.web.conftest import WebCluster, shot

pytestmark = pytest.mark.timeout(240)


def row(page: Any, name: str) -> Any:
    return page.locator('#jobs tbody tr[data-job="%s"]' % name)


def test_job_list_shows_each_job_with_its_status_and_updates_live(page, web: WebCluster, tmp_path):
    page.goto(web.url + "/")
    for name, status in ((web.ready, "ready"), (web.dead, "dead"), (web.running, "active")):
        row(page, name).locator(".badge", has_text=status).wait_for()
    ready = row(page, web.ready)
    assert "ready" == ready.locator(".badge").inner_text()
    owner = web.disco.jobinfo(web.ready)["owner"]
    assert owner and owner in ready.inner_text()
    # a progress bar per stage: map, map_shuffle, reduce (classic job with a reduce)
    stages = ready.locator(".stage-row .name").all_inner_texts()
    assert stages == ["map", "map_shuffle", "reduce"]
    assert ready.locator(".stage-row .count").first.inner_text() == "2/2"
    assert re.search(r"\d", ready.locator("td.num").inner_text())  # a duration
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", ready.locator("td").nth(3).inner_text())
    running = row(page, web.running)
    assert running.locator(".stage-row .bar .running").first.get_attribute("style") != "width:0.0%"
    shot(page, tmp_path, "jobs")

    # filter by status, then by name
    page.click('#status-filter .chip[data-status="dead"]')
    poll_for(lambda: page.locator("#jobs tbody tr").count() == 1, 10, "only dead jobs")
    assert row(page, web.dead).count() == 1
    page.click('#status-filter .chip[data-status=""]')
    page.fill("#name-filter", "Runn")
    poll_for(lambda: page.locator("#jobs tbody tr").count() == 1, 10, "the name filter")
    assert row(page, web.running).count() == 1
    page.fill("#name-filter", "")

    # a job submitted now appears without a reload, and links to its page
    new = web.run(["raw://x"], web_map(), "Fresh")
    row(page, new).wait_for()
    web.disco.wait(new, poll_interval=0.1)
    row(page, new).locator(".badge", has_text="ready").wait_for()
    shot(page, tmp_path, "jobs-live")
    row(page, new).locator("a.job-link").click()
    page.wait_for_url(re.compile(r"job\.html\?name="))
    assert page.locator("#job-name").inner_text() == new


def web_map() -> Any:
    from tests.web import jobfuncs

    return jobfuncs.word_map


def test_job_page_of_a_ready_job_shows_stages_timeline_results_and_parameters(
    page, web: WebCluster, tmp_path
):
    page.goto(web.url + "/job.html?name=" + web.ready)
    page.locator("#job-status .badge", has_text="ready").wait_for()
    stages = page.locator("#stages tbody tr")
    poll_for(lambda: stages.count() == 3, 10, "three stage rows")
    cells = page.locator('#stages tr[data-stage="map"] td').all_inner_texts()
    assert cells[:6] == ["map", "0", "0", "0", "2", "0"]  # pending waiting running done failed
    attempts = json.loads(
        urllib.request.urlopen(web.url + "/disco/ctrl/task_attempts?name=" + web.ready).read()
    )["attempts"]
    bars = page.locator("#timeline svg rect.tl-bar")
    poll_for(lambda: bars.count() == len(attempts), 10, "one bar per attempt")
    assert page.locator("#timeline svg rect.tl-done").count() == len(attempts)
    nodes = page.locator("#timeline svg text.tl-node").all_text_contents()
    assert nodes and set(nodes) <= {"localhost", "127.0.0.2"}
    page.locator("#results a.url").first.wait_for()
    results = web.disco.jobinfo(web.ready)["results"]
    assert page.locator("#results a.url").all_inner_texts() == results
    href = page.locator("#results a.url").first.get_attribute("href")
    assert page.request.get(href).status == 200  # the link downloads the result index
    # every stage's results, as links too
    poll_for(lambda: page.locator("#stage-results details").count() == 3, 10, "stage results")
    page.locator("#stage-results summary", has_text="Stage map: 2 outputs").click()
    assert page.locator("#stage-results details").first.locator("a.url").count() == 2
    params = page.locator("#params-table")
    params.wait_for()
    assert "map → map_shuffle → reduce (classic job: map yes, reduce yes, nr_reduces 1)" in (
        params.inner_text()
    )
    assert "version 1" in params.inner_text()
    # the event log ends with READY, highlighted
    page.locator(".event.ready", has_text="READY: Job done").wait_for()
    shot(page, tmp_path, "job-ready")


def test_job_page_of_a_failed_job_shows_the_exception_and_traceback(page, web, tmp_path):
    page.goto(web.url + "/job.html?name=" + web.dead)
    headline = page.locator("#failure-headline")
    headline.wait_for()
    assert headline.inner_text() == "ValueError: no way to map 'boom'"
    traceback = page.locator("#failure-traceback").inner_text()
    assert "bad_map" in traceback and "raise ValueError" in traceback
    page.locator("#job-status .badge", has_text="dead").wait_for()
    # the failed attempt is marked on the timeline, and its event is highlighted
    page.locator("#timeline svg rect.tl-failed").first.wait_for()
    assert page.locator("#timeline svg text.tl-failed-mark").count() >= 1
    failed_event = page.locator(".event.error", has_text="ValueError").first
    failed_event.wait_for()
    assert "no way to map 'boom'" in failed_event.inner_text()
    assert page.locator('#stages tr[data-stage="map"] td').nth(5).inner_text() == "1"
    shot(page, tmp_path, "job-failed")


def test_live_event_log_grows_while_the_job_runs(page, web: WebCluster, tmp_path):
    page.goto(web.url + "/job.html?name=" + web.running)
    events = page.locator("#events .event")
    events.first.wait_for()
    first = events.count()
    poll_for(lambda: events.count() >= first + 3, 30, "new events without a reload")
    shot(page, tmp_path, "job-running")
    # the page read the log with byte offsets: exactly the file's lines, in order, once each
    shown = page.locator("#events .event .msg").all_inner_texts()
    with urllib.request.urlopen(web.url + "/disco/ctrl/rawevents?name=" + web.running) as r:
        logged = [json.loads(line)[2] for line in r.read().decode().splitlines() if line]
    assert shown == logged[: len(shown)]
    assert any(m.startswith("MSG: [map:0] working on slow") for m in shown)
    # a running task is drawn as a running bar on the timeline
    page.locator("#timeline svg rect.tl-running").first.wait_for()


def test_kill_from_the_page_asks_first_then_kills_the_job(page, web: WebCluster, tmp_path):
    name = web.start_running("ToKill")
    page.goto(web.url + "/job.html?name=" + name)
    page.locator("#job-status .badge", has_text="active").wait_for()
    page.click("#kill")
    page.locator(".dialog").wait_for()
    shot(page, tmp_path, "kill-confirm")
    page.click(".dialog button:has-text('Cancel')")
    assert web.status(name) == "active"
    page.click("#kill")
    page.click("#confirm-ok")
    poll_for(lambda: web.status(name) == "dead", 20, "the job to be killed")
    page.locator("#job-status .badge", has_text="dead").wait_for()
    page.locator(".event", has_text="Job killed").wait_for()
    shot(page, tmp_path, "killed")


def test_purge_from_the_page_removes_the_job(page, web: WebCluster, tmp_path):
    name = web.run(["raw://p"], web_map(), "ToPurge")
    web.disco.wait(name, poll_interval=0.1)
    page.goto(web.url + "/job.html?name=" + name)
    page.locator("#job-status .badge", has_text="ready").wait_for()
    page.click("#purge")
    page.click("#confirm-ok")
    page.wait_for_url(re.compile(r"/index\.html$"))
    poll_for(lambda: name not in [j[2] for j in web.disco.joblist()], 20, "the job to go")
    shot(page, tmp_path, "purged")
