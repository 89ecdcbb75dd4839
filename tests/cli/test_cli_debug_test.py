"""``disco debug`` and ``disco test`` against real embedded masters (library.md 18.2)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

import disco.test
from disco.cli.disco import main
from tests.client.shjobs import BLOCKING_WORKER, jobpack
from tests.conftest import poll_for

pytestmark = pytest.mark.timeout(60)


def run(capsys, master, *args: str) -> tuple[int, str, str]:
    code = main(["-M", master.url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_debug_shows_nodes_blacklists_running_tasks_and_jobs(capsys, cluster) -> None:
    disco_ = cluster.disco
    done = disco_.submit(jobpack(inputs=["raw://a"], prefix="Finished"))
    disco_.wait(done, poll_interval=0.1)
    blocked = disco_.submit(jobpack(BLOCKING_WORKER, inputs=["raw://x"], map=True, prefix="Stuck"))
    poll_for(lambda: any(n.get("tasks") for n in disco_.nodeinfo().values()), 20, "a running task")
    disco_.blacklist("127.0.0.3")
    disco_._json("/disco/ctrl/gc_blacklist", "127.0.0.2")

    code, out, err = run(capsys, cluster, "debug")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Disco master at %s (version %s)" % (cluster.url, disco_.master_version())
    assert "Settings: accept_new_jobs=1, max_failure_rate=100" in lines
    assert "Blacklisted for tasks: 127.0.0.3" in lines
    assert "Blacklisted for DDFS GC: 127.0.0.2" in lines
    nodes = lines[lines.index("Nodes:") + 1 : lines.index("Nodes:") + 5]
    assert nodes[0].split()[:3] == ["host", "workers", "running"]
    rows = {row.split()[0]: row.split() for row in nodes[1:]}
    assert set(rows) == {"localhost", "127.0.0.2", "127.0.0.3"}
    assert rows["127.0.0.3"][4] == "yes" and rows["localhost"][4] == "no"
    running = lines[lines.index("Running tasks:") + 1]
    assert blocked in running and running.endswith("1 task")
    assert "Jobs (2 of 2, newest first):" in lines
    jobs = "\n".join(lines[lines.index("Jobs (2 of 2, newest first):") :])
    assert "%s  active" % blocked in jobs and "%s  ready" % done in jobs
    assert "running on: " in jobs
    assert "stage" in jobs and "map" in jobs

    code, out, err = run(capsys, cluster, "debug", "--json", "-n", "0")
    assert code == 0, err
    state = json.loads(out)
    assert [job["name"] for job in state["jobs"]] == [blocked]  # active jobs always listed
    assert state["jobs_total"] == 2 and state["blacklist"] == ["127.0.0.3"]
    [task] = state["running_tasks"]
    assert task["job"] == blocked
    assert state["jobs"][0]["stages"][0]["stage"] == "map"
    assert state["jobs"][0]["stages"][0]["running"] == 1
    disco_.kill(blocked)

    # the host argument names the master (0.5: the master node on that host)
    code, out, err = main(["debug", cluster.url.split("//", 1)[1]]), *capsys.readouterr()
    assert code == 0, err
    assert out.startswith("Disco master at %s " % cluster.url)


def test_debug_and_test_without_a_master_fail_at_once(capsys) -> None:
    from tests.schemes.servers import free_port

    for command in ("debug", "test"):
        code = main(["-M", "http://127.0.0.1:%d" % free_port(), command])
        _, err = capsys.readouterr()
        assert code == 1
        assert err.startswith("disco %s needs a running master, and none answers at" % command)


TEST_MODULE = """
from disco.test import TestCase, TestJob
from disco.util import kvgroup


class CliLongest(TestJob):
    # the longest word of each first letter

    @staticmethod
    def map(line, params):
        return [(word[0], word) for word in line.split()]

    @staticmethod
    def reduce(iter, params):
        for letter, words in kvgroup(sorted(iter)):
            yield letter, max(words, key=len)


class LongestTestCase(TestCase):
    def test_counts(self):
        self.job = CliLongest().run(input=["raw://ant bee apple", "raw://cat axe"])
        self.assertResults(self.job, [("a", "apple"), ("b", "bee"), ("c", "cat")])
"""

BROKEN_MODULE = """
from disco.test import TestCase


class BrokenTestCase(TestCase):
    def test_nodes(self):
        self.assertEqual(self.nodes, {})  # the master has one node: fails
"""


@pytest.fixture
def test_dir(tmp_path, monkeypatch):
    home = tmp_path / "disco-tests"
    home.mkdir()
    (home / "test_cli_longest.py").write_text(textwrap.dedent(TEST_MODULE))
    (home / "test_cli_broken.py").write_text(textwrap.dedent(BROKEN_MODULE))
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(disco.test.TestCase, "settings", disco.test.TestCase.settings)
    yield str(home)
    for name in ("test_cli_longest", "test_cli_broken"):
        sys.modules.pop(name, None)


def test_test_runs_named_modules_and_tests(capsys, master, test_dir) -> None:
    code, _out, err = run(capsys, master, "test", "-d", test_dir, "test_cli_longest")
    assert code == 0, err
    assert "test_counts (test_cli_longest.LongestTestCase" in err
    assert "Ran 1 test" in err and err.rstrip().endswith("OK")
    assert master.disco.joblist() == []  # DISCO_TEST_PURGE: the test's job was purged

    name = "test_cli_longest.LongestTestCase.test_counts"
    code, _out, err = run(capsys, master, "test", "-d", test_dir, name)
    assert code == 0 and "Ran 1 test" in err


def test_test_discovers_every_module_and_fails_when_one_fails(capsys, master, test_dir) -> None:
    code, _out, err = run(capsys, master, "test", "-d", test_dir)
    assert code == 1
    assert "Ran 2 tests" in err and "FAILED (failures=1)" in err
    assert "BrokenTestCase" in err

    code, _out, err = run(capsys, master, "test", "-d", test_dir + "/nowhere")
    assert code == 1 and "Test directory %s/nowhere does not exist" % test_dir in err
