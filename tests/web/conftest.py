"""Fixtures of the browser tests: Debian's chromium driven by Playwright, one browser per
module, a page per test at a laptop size (1366x768), and a shared master with three jobs
(ready, dead, running) on two nodes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from disco.core import Disco, Job
from disco.embedded import EmbeddedMaster
from tests.conftest import _assert_no_leaked_workers, child_pids, poll_for
from tests.web import jobfuncs

VIEWPORT = {"width": 1366, "height": 768}
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def chromium_path() -> str | None:
    for path in (os.environ.get("DISCO_TEST_CHROMIUM"), *CHROMIUM_PATHS):
        if path and os.access(path, os.X_OK):
            return path
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium (Debian package 'chromium'; .ci/run installs it)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, tmp_path: Path) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.screenshot(path=str(tmp_path / "final.png"))
    context.close()
    assert not errors, "JavaScript errors on the page: %s" % errors


def shot(page: Any, tmp_path: Path, name: str) -> Path:
    """Save a screenshot under the test's tmp dir (and DISCO_WEB_SCREENSHOTS, if set)."""
    path = tmp_path / ("%s.png" % name)
    page.screenshot(path=str(path))
    extra = os.environ.get("DISCO_WEB_SCREENSHOTS")
    if extra:
        os.makedirs(extra, exist_ok=True)
        shutil.copy(path, os.path.join(extra, path.name))
    return path


class WebCluster:
    """A master with two nodes and the three jobs every page test looks at."""

    def __init__(self, master: EmbeddedMaster) -> None:
        self.master = master
        self.url = master.url
        self.disco = Disco(master.url)
        self.ready = self.run(["raw://a b a", "raw://b c"], jobfuncs.word_map, "Ready", True)
        self.dead = self.run(["raw://fine", "raw://boom"], jobfuncs.bad_map, "Broken")
        self.running = self.start_running("Running")
        self.disco.wait(self.ready, poll_interval=0.1)
        poll_for(lambda: self.status(self.dead) == "dead", 60, "the failing job to die")

    def run(self, inputs: list[str], fun_map: Any, prefix: str, reduce: bool = False) -> str:
        kwargs: dict[str, Any] = {"input": inputs, "map": fun_map}
        if reduce:
            kwargs["reduce"] = jobfuncs.count_reduce
        return Job(master=self.url, name=prefix).run(**kwargs).name

    def start_running(self, prefix: str) -> str:
        name = self.run(["raw://slow"], jobfuncs.chatty_map, prefix)
        poll_for(lambda: self.disco.jobinfo(name)["hosts"], 60, "the running job's task")
        return name

    def status(self, name: str) -> str:
        return self.disco.jobinfo(name)["active"]


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebCluster]:
    before = child_pids()
    root = tmp_path_factory.mktemp("web") / "disco"
    nodes = [("localhost", 2), ("127.0.0.2", 2)]
    with EmbeddedMaster(root=root, nodes=nodes, retry_delay=0.0, export_env=False) as m:
        yield WebCluster(m)
    _assert_no_leaked_workers(before)
