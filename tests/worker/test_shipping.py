"""``disco.worker.shipping``: which modules ship, where they go, what cannot be pickled."""

from __future__ import annotations

import functools
import json
import sys
import threading
from typing import Any

import pytest

from disco.error import JobShippingError
from disco.job import Job
from disco.worker import shipping
from disco.worker.classic.worker import Params


def test_ship_path_keeps_package_paths() -> None:
    assert shipping.ship_path("helper", "/x/y/helper.py") == "lib/helper.py"
    assert shipping.ship_path("pkg.sub.mod", "/x/pkg/sub/mod.py") == "lib/pkg/sub/mod.py"
    assert shipping.ship_path("pkg.sub", "/x/pkg/sub/__init__.py") == "lib/pkg/sub/__init__.py"
    so = "/x/pkg/fast.cpython-311-x86_64-linux-gnu.so"
    assert shipping.ship_path("pkg.fast", so) == "lib/pkg/fast.cpython-311-x86_64-linux-gnu.so"


def test_user_modules_are_neither_stdlib_nor_installed_nor_disco() -> None:
    assert shipping.user_module_file("json") is None  # standard library
    assert shipping.user_module_file("cloudpickle") is None  # site-packages
    assert shipping.user_module_file("disco.util") is None  # installed on every node
    assert shipping.user_module_file("__main__") is None
    assert shipping.user_module_file("no_such_module_anywhere") is None
    assert shipping.user_module_file(__name__) == __file__


def test_sibling_modules_and_packages_are_followed(tmp_path, monkeypatch) -> None:
    (tmp_path / "toppkg" / "inner").mkdir(parents=True)
    (tmp_path / "toppkg" / "__init__.py").write_text("")
    (tmp_path / "toppkg" / "inner" / "__init__.py").write_text("from .leaf import f\n")
    (tmp_path / "toppkg" / "inner" / "leaf.py").write_text("import other_helper\nf = 1\n")
    (tmp_path / "other_helper.py").write_text("import json\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    found = shipping.user_modules({"toppkg.inner"})
    assert sorted(found) == ["other_helper", "toppkg", "toppkg.inner", "toppkg.inner.leaf"]
    for name in found:
        sys.modules.pop(name, None)


def imports_inside(line: str, params: Any) -> Any:
    import tests.worker.jobfuncs as jobfuncs

    yield line, jobfuncs


def test_collect_finds_modules_of_by_value_functions_and_references() -> None:
    def local_map(line: str, params: Any) -> Any:
        from tests.worker import peer

        yield line, peer

    found = shipping.collect(Job(), {"map": local_map, "reduce": imports_inside})
    assert {"tests", "tests.worker", "tests.worker.peer", __name__} <= set(found)
    assert "tests.worker.jobfuncs" in found  # imported by a module it ships


def test_collect_pickle_is_reused_once_as_jobdata() -> None:
    job, args = Job(), {"map": imports_inside}
    shipping.collect(job, args)
    assert shipping.pickled_jobdata(job, {"map": imports_inside}) is not None
    assert shipping.pickled_jobdata(job, args) is None  # taken already


def _path(**jobargs: Any) -> str:
    with pytest.raises(JobShippingError) as info:
        shipping.collect(Job(), jobargs)
    assert info.value.path in str(info.value)
    return info.value.path


def test_unpicklable_objects_are_named_with_their_path() -> None:
    lock = threading.Lock()

    def uses_lock(line: str, params: Any) -> None:
        with lock:
            pass

    class Holder:
        def __init__(self) -> None:
            self.lock = lock

        def map(self, line: str, params: Any) -> None:
            pass

    where = "(%s, line " % __file__
    assert _path(map=uses_lock).startswith(
        "Job.run argument 'map' -> closure variable 'lock' of function "
        "test_unpicklable_objects_are_named_with_their_path.<locals>.uses_lock " + where
    )
    partial = functools.partial(json.dumps, default=lock)
    assert _path(map=partial).endswith("keyword argument 'default' of functools.partial")
    bound = _path(map=Holder().map)
    assert bound.startswith("Job.run argument 'map' -> the object method ")
    assert ".Holder.map is bound to -> attribute 'lock' of <" in bound
    assert _path(params=Params(lock=lock)) == (
        "Job.run argument 'params' -> attribute 'lock' of Params(lock=%r)" % lock
    )
    assert _path(map_input_stream=[["x", lock]]) == (
        "Job.run argument 'map_input_stream' -> item 0 -> item 1"
    )
    # the inputs stay on the client (docs/decisions.md): not pickled, nothing to name
    assert shipping.node_jobargs({"input": [lock], "map": None}) == {"map": None}


def test_remote_tracebacks_read_sources_shipped_in_the_job_home(tmp_path, monkeypatch) -> None:
    from disco.worker.report import user_traceback

    source = "def fails():\n    raise ValueError('from the client')\n"
    client_path = "/nonexistent-client-dir/job_script.py"
    shipped = tmp_path / client_path.lstrip("/")
    shipped.parent.mkdir(parents=True)
    shipped.write_text(source)
    namespace: dict[str, Any] = {}
    exec(compile(source, client_path, "exec"), namespace)
    monkeypatch.chdir(tmp_path)  # the job home
    try:
        namespace["fails"]()
    except ValueError as e:
        text = user_traceback(e)
    assert (
        "File \"%s\", line 2, in fails\n    raise ValueError('from the client')\n" % client_path
        in text
    )


def test_by_value_code_keeps_its_file_name() -> None:
    import pickle

    from disco import dPickle

    def local(x: int) -> int:
        return x + 1

    copy = pickle.loads(dPickle.dumps(local))
    assert copy.__code__.co_filename == __file__ and copy(1) == 2
