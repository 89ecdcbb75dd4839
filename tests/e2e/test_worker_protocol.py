"""The worker protocol (master-api.md 8) and its failures (8.8, 8.9) through a real
master: each job's worker is a POSIX sh script in its job home, so every message is
written by hand and every reply is what the master really sent.

The 30 s / 10 s limits of 8.8 are shortened on the master's backend (``limits``)."""

from __future__ import annotations

import dataclasses
import json
import os
import urllib.request
from collections.abc import Iterator

import pytest

from disco.embedded import EmbeddedMaster
from disco.master.events import hash_dir
from tests.conftest import child_pids, poll_for
from tests.master.packs import make_pack, v2_dict
from tests.master.test_api import Client

pytestmark = pytest.mark.timeout(120)

PRELUDE = r"""#!/bin/sh
send() { printf '%s %d %s\n' "$1" "${#2}" "$2"; }
send WORKER "{\"version\":\"1.1\",\"pid\":$$}"; read -r reply
send TASK '""'; read -r task
"""


@pytest.fixture
def client(tmp_path) -> Iterator[Client]:
    before = child_pids()
    with EmbeddedMaster(root=tmp_path / "disco", export_env=False, retry_delay=0.0) as m:
        backend = m.server.backend
        backend.limits = dataclasses.replace(
            backend.limits, pid_timeout=0.5, message_timeout=0.5, last_words_timeout=0.5
        )
        c = Client(m)
        c.post("save_settings", {"max_failure_rate": "0"})  # one failed attempt: dead
        yield c
    poll_for(lambda: not (child_pids() - before), 5.0, "worker processes to exit")


def run(
    client: Client,
    body: str,
    inputs: list | None = None,
    grouping: str = "split",
    prelude: str = PRELUDE,
) -> tuple[str, str, list, list[str]]:
    """Run a one-stage job whose worker is ``prelude + body``: name, status, results,
    event messages."""
    inputs = inputs or [[0, 0, ["raw://a"]]]
    pack = make_pack(
        v2_dict([["map", grouping, False]], inputs), files={"worker.sh": prelude + body}
    )
    name = json.loads(client.request("/disco/job/new", pack)[2])[1]
    status, results = client.wait(name)
    return name, status, results, [event[2] for event in client.events(name)]


def frame(kind: str, payload: str) -> str:
    """A message as the master frames it (8.2), without the final newline."""
    return "%s %d %s" % (kind, len(payload.encode()), payload)


def fetch(client: Client, url: str) -> bytes:
    path = url.split("://", 1)[1].split("/", 1)[1]
    with urllib.request.urlopen("%s/%s" % (client.url, path), timeout=10) as r:
        return r.read()


def test_every_message_and_its_reply(client: Client) -> None:
    body = r"""
send PING '""'; read -r pong
send INPUT '""'; read -r all
send INPUT '["include",[1]]'; read -r inc
send INPUT '["exclude",[1]]'; read -r exc
send INPUT_ERR '[1,[0]]'; read -r retry
send INPUT_ERR '[1,[0,1]]'; read -r fail
send MSG '"hello from sh"'; read -r ok
printf '%s\n' "$pong" "$all" "$inc" "$exc" "$retry" "$fail" "$ok" > replies
size=$(wc -c < replies | tr -d ' ')
send OUTPUT "[3,\"replies\",$size]"; read -r reply
send OUTPUT '[1,"http://elsewhere.example:80/x",7]'; read -r reply
send DONE '""'
exec sleep 60
"""
    inputs = [[0, 0, ["raw://a"]], [0, 0, ["raw://b1", "raw://b2"]]]
    # two inputs in one task: group_all
    name, status, results, messages = run(client, body, inputs, grouping="group_all")
    assert status == "ready", messages
    # 8.6: the index (dir://) first, then the remote output kept as given
    assert results[1] == ["http://elsewhere.example:80/x"]
    [index_line] = fetch(client, results[0][0]).decode().splitlines()
    label, url, size = index_line.split()
    assert label == "3" and url.startswith("disco://localhost/disco/localhost/")
    assert url.endswith("/%s/replies" % name)
    replies = fetch(client, url).decode().splitlines()
    a = '[0,"ok",0,[[0,"raw://a"]]]'
    b = '[1,"ok",0,[[0,"raw://b1"],[1,"raw://b2"]]]'
    assert replies == [
        frame("OK", '"pong"'),  # M 13.6
        frame("INPUT", '["done",[%s,%s]]' % (a, b)),
        frame("INPUT", '["done",[%s]]' % b),
        frame("INPUT", '["done",[%s]]' % a),
        frame("RETRY", '[[1,"raw://b2"]]'),  # replicas not yet failed
        frame("FAIL", '""'),  # every replica failed
        frame("OK", '"ok"'),
    ]
    assert int(size) == len("\n".join(replies)) + 1
    assert "MSG: [map:0] hello from sh" in messages
    assert any(m.startswith("DONE: [map:0] Task finished in ") for m in messages)


@pytest.mark.parametrize(
    "body, kind, texts",
    [
        ("exec sleep 60\n", "error", []),  # replaced below: no byte at all
        (
            "printf 'MSG 10 \"ab'\nexec sleep 60\n",
            "error",
            ["Worker stuck in the middle of a message"],
        ),
        (
            "printf 'THISISAVERYLONGTYPE 2 \"\"\\n'\necho 'some last words'\nexec sleep 60\n",
            "error",
            [
                "Could not parse worker event: invalid_type",
                "Worker did not exit properly after error",
                "Worker died. Last words:\n",
            ],
        ),
        (
            "printf 'MSG x \"\"\\n'\nexit 0\n",
            "error",
            ["Could not parse worker event: invalid_length"],
        ),
        ("exit 0\n", "error", ["Worker crashed! (exit code: 0)", "Worker died without output"]),
        (  # decisions.md "Crashes are told apart": the last output, not "Last words"
            "printf 'MSG 100 \"abc'\nexit 1\n",
            "error",
            ["Worker crashed! (exit code: 1)", 'Last output of the worker:\nMSG 100 "abc'],
        ),
        (
            "send OUTPUT '[0,\"/etc/passwd\",1]'; read -r r\nexec sleep 60\n",
            "error",
            ["/etc/passwd"],
        ),
        ("send ERROR '\"my error\"'\nexec sleep 60\n", "error", ["WARNING: [map:0] my error"]),
        ("send FATAL '\"my fatal\"'\nexec sleep 60\n", "fatal", ["FATAL: [map:0] my fatal"]),
        (  # 4.1: text that is not UTF-8
            "printf 'MSG 5 \"a\\377\\376\"\\n'; read -r r\nsend ERROR '\"x\"'\nexec sleep 60\n",
            "error",
            ["MSG: [map:0] WARNING: Binary message data: \\x61\\xff\\xfe"],
        ),
        (
            "printf 'ERROR 3 \"\\377\"\\n'\nexec sleep 60\n",
            "error",
            ["WARNING: [map:0] WARNING: Binary message data: \\xff"],
        ),
        (  # an escaped lone surrogate is valid JSON but not text
            "send ERROR '\"\\udcff \\ud800\"'\nexec sleep 60\n",
            "error",
            ["failed 1 times"],
        ),
        (
            'send WORKER \'{"version":"1.0","pid":1}\'; read -r r\nexec sleep 60\n',
            "fatal",
            ["Invalid worker version: 1.0"],
        ),
        (
            "send HELLO '\"\"'\nexec sleep 60\n",
            "fatal",
            ["Unknown message type from worker: HELLO"],
        ),
        (
            "i=0; while [ $i -lt 12 ]; do send MSG '\"chatty\"'; i=$((i+1)); done\nexec sleep 60\n",
            "fatal",
            ["Worker is behaving badly: Sent 10 events in a second, ignoring replies."],
        ),
    ],
    ids=[
        "no-pid",
        "stuck-mid-message",
        "unparsable-type",
        "unparsable-length",
        "exit-0-before-done",
        "exit-mid-message",
        "absolute-output",
        "error",
        "fatal",
        "binary-msg",
        "binary-error",
        "lone-surrogates",
        "bad-version",
        "unknown-type",
        "msg-rate-limit",
    ],
)
def test_failures_of_8_8(client: Client, body: str, kind: str, texts: list[str]) -> None:
    if not texts:  # no byte at all: no prelude
        name, status, _, messages = run(client, "#!/bin/sh\nexec sleep 60\n", prelude="")
        texts = ["Worker did not send its PID in 0.5 seconds"]
    else:
        name, status, _, messages = run(client, body)
    assert status == "dead"
    for text in texts:
        assert any(text in m for m in messages), (text, messages)
    if kind == "fatal":
        assert any(m.startswith("FATAL: [map:0] ") for m in messages), messages
    else:  # a recoverable error: counted as a failed attempt, then the limit (0) ends it
        assert any(m.startswith("ERROR: [map:0] Task map:0 failed 1 times.") for m in messages)
    assert client.get("/disco/ctrl/nodeinfo")["localhost"]["job_ok"] == 0
    assert client.get("/disco/ctrl/jobinfo?name=" + name)["active"] == "dead"  # still serving


def test_worker_that_does_not_start_in_time(client: Client) -> None:
    """8.8 "Worker did not start in 60s at <host>", with the limit at 0 s: the attempt
    fails at once, and the job home preparation still completes in the background (it
    is never cut short half-way through an extraction)."""
    backend = client.m.server.backend
    backend.limits = dataclasses.replace(backend.limits, start_timeout=0.0)
    name, status, _, messages = run(client, "send DONE '\"\"'\n")
    assert status == "dead"
    assert "WARNING: [map:0] Worker did not start in 0s at localhost" in messages
    home = os.path.join(client.m.server.config.disco_data, "localhost", hash_dir(name), name)
    poll_for(lambda: os.path.exists(os.path.join(home, ".jobhome")), 10, "the job home")
    assert os.path.exists(os.path.join(home, "worker.sh"))
