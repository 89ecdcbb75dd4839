"""The whole tour with ``DISCO_AUTH_TOKEN`` set: ``disco start``, ``ddfs push/tag/get/cat``,
``disco run/wait`` of a word count, and the library, all pass; the same requests with no
token or a wrong one get 401 and change nothing.  The tools run as separate processes and
read the token from the settings file, as a user's would."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from disco.core import Disco, result_iterator
from disco.ddfs import DDFS
from disco.error import CommError
from disco.settings import DiscoSettings
from tests.conftest import free_port
from tests.security.cli_wordcount import WordCount
from tests.security.helpers import TOKEN, WRONG

pytestmark = pytest.mark.timeout(300)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
COUNTS = {"a": 3, "b": 2, "c": 1}


class Tools:
    """``disco``/``ddfs`` commands in child processes, with or without the token."""

    def __init__(self, tmp_path: Any) -> None:
        self.tmp = tmp_path
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCO_", "DDFS_"))}
        self.env.update(
            DISCO_HOME=str(tmp_path / "home"),
            DISCO_ROOT=str(tmp_path / "root"),
            DISCO_PORT=str(self.port),
            DDFS_PUT_PORT=str(free_port()),
            PYTHONPATH=REPO,
        )
        self.settings_files = {}
        for name, token in (("good", TOKEN), ("wrong", WRONG)):
            path = tmp_path / ("%s.py" % name)
            path.write_text("DISCO_AUTH_TOKEN = %r\n" % token)
            self.settings_files[name] = str(path)
        self.settings_files["none"] = ""

    def run(self, who: str, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(self.env, DISCO_SETTINGS_FILE=self.settings_files[who])
        return subprocess.run(
            [os.path.join(BIN, tool), *args],
            env=env,
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def ok(self, tool: str, *args: str) -> str:
        done = self.run("good", tool, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def refused(self, who: str, tool: str, *args: str) -> None:
        done = self.run(who, tool, *args)
        assert done.returncode != 0, (who, args, done.stdout)
        assert "401" in done.stderr and "X-Disco-Auth-Token" in done.stderr, done.stderr

    def client_settings(self, token: str | None) -> DiscoSettings:
        values = {k: v for k, v in self.env.items() if k.startswith(("DISCO_", "DDFS_"))}
        values["DISCO_SETTINGS_FILE"] = ""
        values["DISCO_MASTER"] = "http://127.0.0.1:%d" % self.port
        if token is not None:
            values["DISCO_AUTH_TOKEN"] = token
        return DiscoSettings(environ=values)


@pytest.fixture
def tools(tmp_path, monkeypatch) -> Any:
    for key in list(os.environ):
        if key.startswith(("DISCO_", "DDFS_")):
            monkeypatch.delenv(key)
    t = Tools(tmp_path)
    (tmp_path / "a.txt").write_text("a b a\n")
    (tmp_path / "b.txt").write_text("b c a\n")
    (tmp_path / "c.txt").write_text("z z z\n")
    assert "started" in t.ok("disco", "start")
    yield t
    t.run("good", "disco", "stop")


def state(tools: Tools) -> dict[str, Any]:
    settings = tools.client_settings(TOKEN)
    disco, ddfs = Disco(settings=settings), DDFS(settings=settings)
    blobs = []
    for dirpath, _dirs, files in os.walk(tools.tmp / "root" / "ddfs"):
        blobs.extend(os.path.join(dirpath, f) for f in files if "/blob/" in dirpath + "/")
    return {
        "jobs": sorted((status, name) for _t, status, name in disco.joblist()),
        "tags": {tag: ddfs.get(tag) for tag in ddfs.list()},
        "blobs": sorted(blobs),
    }


def test_the_whole_tour_with_a_token(tools, monkeypatch) -> None:
    # -- with the token: everything works -------------------------------------------------
    assert "pushing" in tools.ok("ddfs", "push", "data:words", "a.txt", "b.txt")
    tools.ok("ddfs", "tag", "data:alias", "tag://data:words")
    assert "'urls'" in tools.ok("ddfs", "get", "data:words")
    cat = tools.ok("ddfs", "cat", "data:words")
    assert sorted(cat.splitlines()) == ["a b a", "b c a"]
    assert sorted(tools.ok("ddfs", "ls").split()) == ["data:alias", "data:words"]
    name = tools.ok("disco", "run", "tests.security.cli_wordcount.WordCount", "tag://data:alias")
    name = name.strip()
    results = tools.ok("disco", "wait", name).split()
    assert results and all(url.startswith("dir://") for url in results)
    xcat = tools.ok("ddfs", "xcat", *results)
    assert dict(line.split("\t") for line in xcat.splitlines()) == {
        k: str(v) for k, v in COUNTS.items()
    }
    # the library with the token (from the environment, as a script would have it)
    good = tools.client_settings(TOKEN)
    for key in ("DISCO_PORT", "DISCO_MASTER", "DISCO_AUTH_TOKEN"):
        monkeypatch.setenv(key, str(good[key]))
    assert dict(result_iterator(results)) == COUNTS
    ddfs = DDFS()
    ddfs.push("data:lib", [(b"library\n", "lib")])
    assert [f.read() for f in ddfs.pull("data:lib")] == [b"library\n"]
    job = Disco().new_job(
        name="LibCount", input=["tag://data:words"], map=WordCount.map, reduce=WordCount.reduce
    )
    assert dict(result_iterator(job.wait(poll_interval=0.1))) == COUNTS
    # reads stay open: no token needed to look
    assert "'urls'" in tools.run("none", "ddfs", "get", "data:words").stdout

    # -- no token, wrong token: 401 and nothing changes -----------------------------------
    before = state(tools)
    for who in ("none", "wrong"):
        tools.refused(who, "ddfs", "push", "data:words", "c.txt")
        tools.refused(who, "ddfs", "push", "data:new", "c.txt")
        tools.refused(who, "ddfs", "tag", "data:words", "tag://data:lib")
        tools.refused(who, "ddfs", "setattr", "data:words", "colour", "red")
        tools.refused(who, "ddfs", "rm", "data:alias")
        tools.refused(who, "disco", "run", "tests.security.cli_wordcount.WordCount", "raw://x")
        tools.refused(who, "disco", "kill", name)
        tools.refused(who, "disco", "purge", name)
    for token in (None, WRONG):
        bad = tools.client_settings(token)
        ddfs, disco = DDFS(settings=bad), Disco(settings=bad)
        for attempt in (
            lambda: ddfs.push("data:words", [(b"zzz\n", "z")]),  # noqa: B023 - called at once
            lambda: ddfs.delete("data:alias"),  # noqa: B023
            lambda: disco.purge(name),  # noqa: B023
            lambda: disco.submit(b"not even a job pack"),  # noqa: B023
        ):
            with pytest.raises(CommError) as info:
                attempt()
            assert info.value.code == 401
    assert state(tools) == before
    assert dict(result_iterator(results)) == COUNTS  # the results are intact
