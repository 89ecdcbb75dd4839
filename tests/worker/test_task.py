"""disco.task: names and paths a task derives from its TASK reply (library.md 4)."""

from __future__ import annotations

import hashlib
import os

import pytest

from disco.error import DiscoError
from disco.task import Task, hexhash, safe_name

REPLY = {
    "taskid": 3,
    "master": "http://master:8989",
    "disco_port": 8989,
    "put_port": 8990,
    "ddfs_data": "/srv/ddfs",
    "disco_data": "/srv/data",
    "stage": "map",
    "grouping": "split",
    "group": [0, "127.0.0.2"],
    "jobfile": "/srv/data/node1/82/J@1:2:3/jobfile",
    "jobname": "J@1:2:3",
    "host": "node1",
}


def test_group_from_reply_list_and_string() -> None:
    task = Task(**REPLY)
    assert task.group == "0-127.0.0.2"
    assert (task.group_label, task.group_host) == (0, "127.0.0.2")
    other = Task(**dict(REPLY, group="3-"))
    assert (other.group, other.group_label, other.group_host) == ("3-", 3, "")


def test_uid_and_paths() -> None:
    task = Task(**REPLY)
    stage, rest = task.uid.split(":", 1)
    assert stage == "map"
    assert rest.startswith("0-127_0_0_2-3-")
    assert rest.endswith("-%d" % os.getpid())
    assert task.jobpath == "node1/%s/J@1:2:3" % hashlib.md5(b"J@1:2:3").hexdigest()[:2]
    assert task.taskpath == "%s/%s" % (hexhash(task.uid), task.uid)
    assert task.path("x") == task.taskpath + "/x"
    assert task.url("x") == "disco://node1/disco/%s/%s/x" % (task.jobpath, task.taskpath)
    assert task.url("x", scheme="dir").startswith("dir://node1/disco/")


def test_outputs() -> None:
    task = Task(**REPLY)
    assert task.output_filename(2) == "map-0-127.0.0.2-2"
    assert task.output() == (task.path(task.uid), "disco", 0)
    assert task.output(2) == (task.path("map-0-127.0.0.2-2"), "part", 2)
    with pytest.raises(ValueError, match=r"Output label \(a : <class 'str'>\) must be an integer"):
        task.output_filename("a")


def test_oob_keys_and_values_are_checked_before_any_request() -> None:
    task = Task(**REPLY)  # its master does not exist: only the checks can answer
    for key, match in (
        ("bad key", "invalid characters"),
        ("", "must not be empty"),
        ("k" * 201, "longer than 200"),
        (7, "must be a str"),
    ):
        with pytest.raises(DiscoError, match=match):
            task.put(key, b"v")
    with pytest.raises(DiscoError, match="must be bytes"):
        task.put("good-key", "text")
    with pytest.raises(DiscoError, match="invalid characters"):
        task.get("bad/key")


def test_safe_name() -> None:
    assert safe_name("a.b/c d@e:f-g_h") == "a_b_c_d@e:f-g_h"


def test_task_settings_become_the_defaults_of_the_worker_process() -> None:
    from disco.worker import export_task_settings

    env = {"DISCO_PORT": "1234"}  # set by the job's environment: kept
    export_task_settings(Task(**REPLY), env)
    assert env == {
        "DISCO_PORT": "1234",
        "DISCO_MASTER": "http://master:8989",
        "DDFS_PUT_PORT": "8990",
    }
