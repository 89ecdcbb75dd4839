"""``disco/worker/__init__.py`` was split into modules with one job each (issue 13):
every name the module had before the split still imports from ``disco.worker`` and is
the very object of its new module; pickles still name the 0.5 path."""

from __future__ import annotations

import importlib
import pickle

import pytest

import disco.worker

# Every name disco.worker defined before the split -> the module that holds it now.
HOMES_BEFORE_SPLIT = {
    "DISCO_WORKER_MAX_TIME": "disco.worker.protocol",
    "REPLY_TIMEOUT": "disco.worker.protocol",
    "PROTOCOL_VERSION": "disco.framing",
    "ProtocolError": "disco.worker.protocol",
    "MessageWriter": "disco.worker.protocol",
    "_ReplyReader": "disco.worker.protocol",
    "_reader": "disco.worker.protocol",
    "_lock": "disco.worker.protocol",
    "_wait_for_end": "disco.worker.protocol:wait_for_end",
    "Params": "disco.worker.params",
    "IDedInput": "disco.worker.inputs",
    "local_path": "disco.locality",
    "ReplicaIter": "disco.worker.inputs",
    "InputIter": "disco.worker.inputs",
    "Input": "disco.worker.inputs",
    "SerialInput": "disco.worker.inputs",
    "ParallelInput": "disco.worker.inputs",
    "MergedInput": "disco.worker.inputs",
    "read_index": "disco.util",  # merged with the one of disco.util
    "copy_url": "disco.worker.inputs",
    "BaseOutput": "disco.worker.outputs",
    "Output": "disco.worker.outputs",
    "LAUNCHER": "disco.worker.jobpack",
    "LAUNCHER_PATH": "disco.worker.jobpack",
    "input_settings": "disco.worker.jobpack",
    "profile_key": "disco.worker.taskrun",
    "export_task_settings": "disco.worker.taskrun",
    "_apply_memory_limit": "disco.worker.taskrun",
    "Worker": "disco.worker.base",
}


@pytest.mark.parametrize("name", sorted(HOMES_BEFORE_SPLIT))
def test_name_imports_from_disco_worker_and_is_its_new_modules_object(name: str) -> None:
    namespace: dict[str, object] = {}
    exec("from disco.worker import %s" % name, namespace)  # noqa: S102
    module, _, attr = HOMES_BEFORE_SPLIT[name].partition(":")
    assert namespace[name] is getattr(importlib.import_module(module), attr or name)


def test_the_submodules_of_before_stay_attributes() -> None:
    from disco.worker import report

    assert disco.worker._report is report and disco.worker.report is report


def test_active_task_stays_a_package_attribute_that_code_may_set() -> None:
    from disco.worker.inputs import local_path

    class Task:
        host, disco_port, disco_data, ddfs_data = "here", 8989, "/d", "/f"

    assert disco.worker.active_task is None
    disco.worker.active_task = Task()
    try:  # the split modules read the package's attribute, not a copy
        assert local_path("disco://here/disco/a/b") == "/d/a/b"
    finally:
        disco.worker.active_task = None


def test_pickles_name_the_0_5_module_path() -> None:
    data = pickle.dumps(disco.worker.Params(n=1), protocol=2)
    assert b"cdisco.worker\nParams\n" in data
    assert disco.worker.Params.__module__ == disco.worker.Worker.__module__ == "disco.worker"
    assert pickle.loads(data).n == 1
