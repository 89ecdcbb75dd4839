"""The Nodes, DDFS and Settings pages in chromium, against a real master."""

from __future__ import annotations

from typing import Any

import pytest

from disco.ddfs import DDFS
from tests.conftest import poll_for
from tests.web.conftest import WebCluster, shot

pytestmark = pytest.mark.timeout(240)


def node_row(page: Any, host: str) -> Any:
    return page.locator('#nodes tbody tr[data-node="%s"]' % host)


def test_nodes_page_shows_nodes_and_blacklists_and_whitelists_one(page, web: WebCluster, tmp_path):
    page.goto(web.url + "/nodes.html")
    for host in ("localhost", "127.0.0.2"):
        node_row(page, host).wait_for()
    # the running job's task is shown on its node, in a busy slot
    [host] = web.disco.jobinfo(web.running)["hosts"]
    running = node_row(page, host)
    running.locator(".running-tasks a", has_text=web.running).wait_for()
    assert running.locator(".slot").count() == 2 and running.locator(".slot.busy").count() == 1
    assert "just now" in running.inner_text() or " s ago" in running.inner_text()
    assert "free" in running.inner_text()  # disk space
    shot(page, tmp_path, "nodes")

    other = node_row(page, "127.0.0.2")
    other.locator("button", has_text="Blacklist").click()
    poll_for(
        lambda: web.disco._json("/disco/ctrl/get_blacklist") == ["127.0.0.2"], 10, "the blacklist"
    )
    node_row(page, "127.0.0.2").locator("button", has_text="Whitelist").wait_for()
    assert "blacklisted" in (node_row(page, "127.0.0.2").get_attribute("class") or "")
    assert web.disco.nodeinfo()["127.0.0.2"]["blacklisted"] is True
    shot(page, tmp_path, "nodes-blacklisted")
    node_row(page, "127.0.0.2").locator("button", has_text="Whitelist").click()
    poll_for(
        lambda: web.disco._json("/disco/ctrl/get_blacklist") == [], 10, "the node to be whitelisted"
    )


def test_nodes_page_edits_the_config_table(page, web: WebCluster, tmp_path):
    page.goto(web.url + "/nodes.html")
    rows = page.locator("#config tbody tr")
    poll_for(lambda: rows.count() == 2, 10, "the config table")
    assert [r.locator(".spec").input_value() for r in rows.all()] == ["localhost", "127.0.0.2"]
    rows.nth(1).locator(".workers").fill("3")
    page.click("#add-row")
    rows.nth(2).locator(".spec").fill("127.0.0.3")
    rows.nth(2).locator(".workers").fill("1")
    page.click("#save-config")
    want = [["localhost", "2"], ["127.0.0.2", "3"], ["127.0.0.3", "1"]]
    poll_for(lambda: web.disco._json("/disco/ctrl/load_config_table") == want, 10, "saved table")
    node_row(page, "127.0.0.3").wait_for()
    poll_for(lambda: node_row(page, "127.0.0.2").locator(".slot").count() == 3, 10, "3 slots")
    shot(page, tmp_path, "config-table")
    rows.nth(2).locator("button", has_text="Remove").click()
    rows.nth(1).locator(".workers").fill("2")
    page.click("#save-config")
    want = [["localhost", "2"], ["127.0.0.2", "2"]]
    poll_for(lambda: web.disco._json("/disco/ctrl/load_config_table") == want, 10, "restored")


def test_ddfs_page_lists_a_pushed_tag_with_its_blobs_attributes_and_versions(
    page, web: WebCluster, tmp_path
):
    ddfs = DDFS(web.url)
    ddfs.push("web:data:words", [(b"hello web ui\n", "words_txt")])
    ddfs.push("web:data:words", [(b"second blob\n", "more_txt")])
    ddfs.setattr("web:data:words", "source", "browser test")
    ddfs.push("other:tag", [(b"x\n", "x")])
    page.goto(web.url + "/ddfs.html")
    page.fill("#prefix", "web:")
    page.locator('#tags li[data-tag="web:data:words"]').wait_for()
    poll_for(lambda: page.locator("#tags li").count() == 1, 10, "the prefix filter")
    page.click('#tags li[data-tag="web:data:words"] a')
    page.locator("#tag-name", has_text="web:data:words").wait_for()
    entries = page.locator("#entries tbody tr")
    assert entries.count() == 2
    assert (
        "words_txt$" in entries.nth(0).inner_text() or "words_txt$" in entries.nth(1).inner_text()
    )
    assert page.locator("#attributes").inner_text() == "source\tbrowser test"
    # replica location and a link that downloads the blob
    doc = ddfs.get("web:data:words")
    words = next(e for e in doc["urls"] if "words_txt" in e[0])
    host = words[0].split("/")[2]
    row = entries.filter(has_text="words_txt")
    assert host in row.locator(".replica").inner_text()
    href = row.locator("a.download").get_attribute("href")
    assert page.request.get(href).body() == b"hello web ui\n"
    # versions: the push, the second push and the attribute are three versions
    versions = page.locator("#versions tbody tr")
    poll_for(lambda: versions.count() == 3, 10, "three versions")
    assert "(current)" in versions.nth(0).inner_text() and doc["id"] in versions.nth(0).inner_text()
    shot(page, tmp_path, "ddfs")


def test_settings_page_shows_and_saves_the_settings(page, web: WebCluster, tmp_path):
    page.goto(web.url + "/settings.html")
    page.locator("#master-version", has_text="0.5").wait_for()
    poll_for(lambda: page.locator("#max-failure-rate").input_value() == "100", 10, "settings")
    assert page.locator("#accept-new-jobs").input_value() == "1"
    config = page.locator("#master-config")
    config.locator("th", has_text="port").first.wait_for()
    assert str(web.master.server.config.port) in config.inner_text()
    assert "blob_replicas" in page.locator("#ddfs-config").inner_text()
    page.fill("#max-failure-rate", "7")
    page.select_option("#accept-new-jobs", "0")
    page.click("#save-settings")
    want = {"max_failure_rate": 7, "accept_new_jobs": 0}
    poll_for(lambda: web.disco._json("/disco/ctrl/get_settings") == want, 10, "saved settings")
    shot(page, tmp_path, "settings")
    web.disco._json(
        "/disco/ctrl/save_settings", {"max_failure_rate": "100", "accept_new_jobs": "1"}
    )
