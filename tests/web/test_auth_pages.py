"""The pages with the master's shared secret (``DISCO_AUTH_TOKEN``), in chromium: a 401
asks for the token in a dialog, the page keeps it in sessionStorage, sends it in
``X-Disco-Auth-Token`` on every request and retries; a wrong token changes nothing and is
reported; with ``DISCO_AUTH_READS`` the page shell loads and the data follows the token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from disco.core import Disco, Job
from disco.embedded import EmbeddedMaster
from disco.settings import DiscoSettings
from tests.conftest import _assert_no_leaked_workers, child_pids, poll_for
from tests.security.helpers import TOKEN, WRONG, http
from tests.web import jobfuncs
from tests.web.conftest import shot

pytestmark = pytest.mark.timeout(240)


class TokenCluster:
    """A master that demands the token (for reads too, if asked), and a client with it."""

    def __init__(self, master: EmbeddedMaster) -> None:
        self.master = master
        self.url = master.url
        self.disco = Disco(master.url, settings=DiscoSettings(DISCO_AUTH_TOKEN=TOKEN))

    def run(self, inputs: list[str], fun_map: Any, prefix: str) -> str:
        return Job(master=self.disco, name=prefix).run(input=inputs, map=fun_map).name

    def start_running(self, prefix: str) -> str:
        name = self.run(["raw://slow"], jobfuncs.chatty_map, prefix)
        poll_for(lambda: self.disco.jobinfo(name)["hosts"], 60, "the running job's task")
        return name

    def status(self, name: str) -> str:
        return self.disco.jobinfo(name)["active"]


def token_master(tmp_path_factory: pytest.TempPathFactory, **settings: str) -> Iterator[Any]:
    before = child_pids()
    root = tmp_path_factory.mktemp("webauth") / "disco"
    with EmbeddedMaster(
        root=root,
        nodes=[("localhost", 3)],
        settings={"DISCO_AUTH_TOKEN": TOKEN, **settings},
        retry_delay=0.0,
        export_env=False,
    ) as m:
        yield TokenCluster(m)
    _assert_no_leaked_workers(before)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenCluster]:
    yield from token_master(tmp_path_factory)


@pytest.fixture(scope="module")
def secured_reads(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TokenCluster]:
    yield from token_master(tmp_path_factory, DISCO_AUTH_READS="1")


def stored_token(page: Any) -> Any:
    return page.evaluate("() => sessionStorage.getItem('disco.authToken')")


def kill_from_the_page(page: Any, cluster: TokenCluster, name: str) -> None:
    page.goto(cluster.url + "/job.html?name=" + name)
    page.locator("#job-status .badge", has_text="active").wait_for()  # reads are open
    assert page.locator("#auth-dialog").count() == 0
    page.click("#kill")
    page.click("#confirm-ok")


def test_kill_asks_for_the_token_then_kills_the_job(page, secured: TokenCluster, tmp_path):
    name = secured.start_running("TokenKill")
    kill_from_the_page(page, secured, name)
    dialog = page.locator("#auth-dialog")
    dialog.wait_for()  # the kill answered 401: the page asks
    assert "This master requires its DISCO_AUTH_TOKEN" in dialog.inner_text()
    assert page.locator("#auth-token-error").count() == 0  # no token was given yet
    assert secured.status(name) == "active"
    shot(page, tmp_path, "token-dialog")
    page.fill("#auth-token-input", TOKEN)
    page.click("#auth-token-ok")
    # the same request was sent again with the token
    poll_for(lambda: secured.status(name) == "dead", 20, "the job to be killed")
    page.locator(".flash", has_text="Job killed").wait_for()
    page.locator("#job-status .badge", has_text="dead").wait_for()
    assert page.locator("#auth-dialog").count() == 0
    assert stored_token(page) == TOKEN  # sessionStorage, not localStorage
    assert page.evaluate("() => localStorage.length") == 0
    # the token is asked once: the next write (purge) goes through without a dialog
    page.click("#purge")
    page.click("#confirm-ok")
    page.wait_for_url("**/index.html")
    poll_for(lambda: name not in [j[2] for j in secured.disco.joblist()], 20, "the purge")
    assert stored_token(page) == TOKEN  # same tab, another page: still known
    # "Forget token" in the nav drops it; the next write asks again
    page.locator("#forget-token").click()
    page.locator(".flash", has_text="Token forgotten").wait_for()
    assert stored_token(page) is None
    assert page.locator("#forget-token").is_hidden()


def test_a_wrong_token_changes_nothing_and_the_page_says_so(page, secured: TokenCluster, tmp_path):
    name = secured.start_running("TokenWrong")
    kill_from_the_page(page, secured, name)
    page.locator("#auth-dialog").wait_for()
    page.fill("#auth-token-input", WRONG)
    page.click("#auth-token-ok")
    error = page.locator("#auth-token-error")  # asked again, saying the token was refused
    error.wait_for()
    assert "refused that token" in error.inner_text()
    shot(page, tmp_path, "token-wrong")
    assert secured.status(name) == "active"
    page.click("#auth-token-cancel")
    flash = page.locator(".flash.error")
    flash.wait_for()
    assert "requires its DISCO_AUTH_TOKEN" in flash.inner_text()
    assert page.locator("#auth-dialog").count() == 0
    assert stored_token(page) is None  # the refused token is not kept
    assert page.locator("#forget-token").is_hidden()
    assert secured.status(name) == "active"  # nothing changed
    page.locator("#job-status .badge", has_text="active").wait_for()
    secured.disco.kill(name)


def test_with_reads_protected_the_job_list_loads_after_the_token(
    page, secured_reads: TokenCluster, tmp_path
):
    cluster = secured_reads
    done = cluster.run(["raw://a b a"], jobfuncs.word_map, "Readable")
    cluster.disco.wait(done, poll_interval=0.1)
    assert http("GET", cluster.url + "/disco/ctrl/joblist")[0] == 401
    page.goto(cluster.url + "/")  # the page shell loads without the token
    page.locator("#auth-dialog").wait_for()  # the job list answered 401
    assert page.locator('#jobs tbody tr[data-job="%s"]' % done).count() == 0
    shot(page, tmp_path, "token-dialog-reads")
    page.fill("#auth-token-input", TOKEN)
    page.keyboard.press("Enter")
    row = page.locator('#jobs tbody tr[data-job="%s"]' % done)
    row.locator(".badge", has_text="ready").wait_for()
    assert page.locator("#auth-dialog").count() == 0
    shot(page, tmp_path, "jobs-with-token")
    # the job page's reads (jobinfo, events, results, parameters) carry it too
    row.locator("a.job-link").click()
    page.locator("#job-status .badge", has_text="ready").wait_for()
    page.locator(".event.ready", has_text="READY").wait_for()
    page.locator("#params-table").wait_for()
    assert page.locator("#auth-dialog").count() == 0


def test_with_reads_protected_a_result_link_downloads_with_the_token(
    page, secured_reads: TokenCluster, tmp_path
):
    cluster = secured_reads
    done = cluster.run(["raw://x y"], jobfuncs.word_map, "Download")
    cluster.disco.wait(done, poll_interval=0.1)
    # open the page on the origin of the result links (node "localhost" on this port)
    origin = cluster.url.replace("127.0.0.1", "localhost")
    page.goto(origin + "/job.html?name=" + done)
    page.locator("#auth-dialog").wait_for()
    page.fill("#auth-token-input", TOKEN)
    page.click("#auth-token-ok")
    link = page.locator("#results a.url").first
    link.wait_for()
    href = link.get_attribute("href")
    assert href.startswith(origin + "/disco/")
    assert page.request.get(href).status == 401  # a plain navigation has no header
    with page.expect_download() as info:
        link.click()
    saved = info.value.path()
    expected = http("GET", href, token=TOKEN)
    assert expected[0] == 200 and open(saved, "rb").read() == expected[1]
