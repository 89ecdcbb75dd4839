"""A configured node that cannot exist is never simulated (issue 12.8).

On the local backend only this machine's own names and addresses are nodes: another
host is refused by ``save_config_table`` (400, the reason and "use a cluster backend"),
and one found in a stored config is shown as down with its reason; no task runs "on" it
and DDFS never places a blob there."""

from __future__ import annotations

import json
import logging
import socket

import pytest

from disco.core import Job, result_iterator
from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from disco.error import CommError

from .test_api import Client


@pytest.fixture
def client(master) -> Client:
    return Client(master)


@pytest.mark.parametrize(
    "spec,named,why",
    [
        ("node2.invalid", "node2.invalid", "cannot resolve host node2.invalid"),
        ("n01:03", "n01", "cannot resolve host n01"),
        ("192.0.2.1", "192.0.2.1", "192.0.2.1 is not an address of this machine"),
    ],
)
def test_save_config_table_refuses_other_machines(client, spec, named, why) -> None:
    before = client.get("/disco/ctrl/load_config_table")
    body = json.dumps([["localhost", "1"], [spec, "1"]]).encode()
    status, _, reply = client.request("/disco/ctrl/save_config_table", body)
    message = json.loads(reply)
    assert status == 400
    assert why in message and "use a cluster backend" in message and named in message
    assert client.get("/disco/ctrl/load_config_table") == before
    assert spec.split(":")[0] not in client.get("/disco/ctrl/nodeinfo")


def test_this_machines_names_and_loopback_addresses_are_nodes(client) -> None:
    table = [["localhost", "1"], ["127.0.0.5", "1"], [socket.gethostname(), "1"]]
    assert client.post("save_config_table", table) == "table saved!"
    nodes = client.get("/disco/ctrl/nodeinfo")
    assert all(nodes[h]["connected"] is True and "reason" not in nodes[h] for h, _ in table)


def word_map(line, params):
    for word in line.split():
        yield word, 1


@pytest.mark.server_errors_expected  # too_many_failed_nodes is a 500, as in 0.5
def test_stored_config_with_another_machine_shows_it_down(tmp_path, caplog) -> None:
    config = tmp_path / "cluster.config"
    hosts = [["localhost", "2"], ["node2.invalid", "2"]]
    config.write_text(json.dumps({"hosts": hosts, "blacklist": [], "gc_blacklist": []}))
    settings = {"DISCO_MASTER_CONFIG": str(config)}
    with EmbeddedMaster(root=tmp_path / "d", settings=settings) as m:
        nodes = Client(m).get("/disco/ctrl/nodeinfo")
        down = nodes["node2.invalid"]
        assert down["connected"] is False
        assert down["reason"].startswith("cannot resolve host node2.invalid")
        assert "use a cluster backend" in down["reason"]
        assert nodes["localhost"]["connected"] is True and "reason" not in nodes["localhost"]
        # tasks run on the real node only, and say so
        inputs = ["raw://w%d" % n for n in range(6)]
        job = Job(master=m.url).run(input=inputs, map=word_map)
        assert sorted(k for k, _ in result_iterator(job.wait(), ddfs=m.url)) == sorted(
            "w%d" % n for n in range(6)
        )
        events = m.disco.rawevents(job.name)
        assert "node2.invalid" not in events
        assert "node2.invalid" not in Client(m).get("/disco/ctrl/jobinfo?name=" + job.name)["hosts"]
        # DDFS never places a blob there, and does not quietly store without it: a
        # down node blocks tag writes (0.5's too_many_failed_nodes), so chunk fails loudly
        caplog.set_level(logging.WARNING, logger="disco.ddfs.client")
        ddfs = DDFS(m.url)
        with pytest.raises(CommError, match="too_many_failed_nodes") as info:
            ddfs.chunk("data:here", [["raw://a b"]])
        assert info.value.code == 500
        assert not [r for r in caplog.records if "upload to" in r.getMessage()]
        for _ in range(5):  # placement never picks it
            assert "node2.invalid" not in json.dumps(ddfs.new_blob("probe"))
        with pytest.raises(CommError, match="Not enough nodes"):
            ddfs.new_blob("probe", replicas=2)  # two copies need two real nodes
