"""The web UI's page shell under ``DISCO_AUTH_READS``: the shipped HTML/CSS/JS files are
served without the token (a browser navigation cannot send a header; they hold no data),
every data request still needs it, and a ``DISCO_WWW_ROOT`` file is never served without
it, not even one that shadows a shell file."""

from __future__ import annotations

from typing import Any

import pytest

from disco import auth
from tests.conftest import _assert_no_leaked_workers, child_pids
from tests.security.helpers import TOKEN, WRONG, http
from tests.security.test_auth_api import secured_master

pytestmark = pytest.mark.timeout(120)

SHELL = [
    "/",
    "/index.html",
    "/job.html",
    "/nodes.html",
    "/ddfs.html",
    "/settings.html",
    "/js/common.js",
    "/js/jobs.js",
    "/css/disco.css",
]


def test_the_shell_is_the_shipped_files_and_only_get_head() -> None:
    assert set(SHELL) <= auth.shell_paths()
    assert all(p.startswith("/") and "/disco/" not in p for p in auth.shell_paths())
    policy = auth.AuthPolicy(TOKEN, reads=True)
    for path in SHELL:
        assert not policy.needs_token("GET", path) and not policy.needs_token("HEAD", path)
        assert policy.needs_token("POST", path) and policy.needs_token("PUT", path)
    for path in (
        "/js",
        "/js/",
        "/disco/ctrl/joblist",
        "/ddfs/tags",
        "/metrics",
        "/nosuch.html",
        "/js/../index.htm",
        "/disco/index.html",
    ):
        assert policy.needs_token("GET", path), path
    # with reads open nothing changes: the shell was open already
    assert not auth.AuthPolicy(TOKEN).needs_token("GET", "/index.html")


@pytest.fixture
def site_master(tmp_path) -> Any:
    """Reads protected, and a DISCO_WWW_ROOT with its own index.html and a page of its own."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("SITE INDEX with numbers\n")
    (www / "report.html").write_text("SITE REPORT\n")
    before = child_pids()
    with secured_master(tmp_path / "disco", DISCO_AUTH_READS="1", DISCO_WWW_ROOT=str(www)) as m:
        yield m
    _assert_no_leaked_workers(before)


def test_with_reads_protected_the_shell_is_open_and_every_data_request_is_not(site_master):
    url = site_master.url
    shipped = http("GET", url + "/js/common.js")
    assert shipped[0] == 200 and auth.HEADER.encode() in shipped[1]
    for path in SHELL:
        status, body = http("GET", url + path)
        assert status == 200, path
        assert b"SITE" not in body, path  # the shipped file, not the site's
    assert http("HEAD", url + "/css/disco.css")[0] == 200
    # the data the pages read: JSON endpoints, downloads, the site's own pages
    for path in (
        "/disco/ctrl/joblist",
        "/disco/ctrl/nodeinfo",
        "/ddfs/tags",
        "/metrics",
        "/report.html",
        "/js/",
        "/nosuch.html",
    ):
        for token in (None, WRONG):
            assert http("GET", url + path, token=token)[0] == 401, (path, token)
    # with the token, the site's pages are served as before (DISCO_WWW_ROOT first)
    assert http("GET", url + "/", token=TOKEN) == (200, b"SITE INDEX with numbers\n")
    assert http("GET", url + "/report.html", token=TOKEN) == (200, b"SITE REPORT\n")
    assert http("GET", url + "/disco/ctrl/joblist", token=TOKEN)[0] == 200
    # the shell does not open writes
    assert http("POST", url + "/index.html", b"x")[0] == 401
