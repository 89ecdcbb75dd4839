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


def test_a_changed_file_is_parsed_again_an_unchanged_one_is_not(tmp_path, monkeypatch) -> None:
    """Module discovery is cached per file (path, mtime, size): a second job of the same
    script does not parse its modules again, and a file that changed is parsed again."""
    (tmp_path / "cached_mod.py").write_text("import cached_dep\n")
    (tmp_path / "cached_dep.py").write_text("X = 1\n")
    (tmp_path / "cached_new.py").write_text("Y = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    parsed: list[str] = []
    real_parse = shipping.parse_source

    def counting_parse(source: bytes, path: str) -> Any:
        parsed.append(path.rsplit("/", 1)[-1])
        return real_parse(source, path)

    monkeypatch.setattr(shipping, "parse_source", counting_parse)
    try:
        assert sorted(shipping.user_modules({"cached_mod"})) == ["cached_dep", "cached_mod"]
        assert sorted(parsed) == ["cached_dep.py", "cached_mod.py"]
        assert sorted(shipping.user_modules({"cached_mod"})) == ["cached_dep", "cached_mod"]
        assert len(parsed) == 2  # nothing parsed again
        (tmp_path / "cached_mod.py").write_text("import cached_dep\nimport cached_new\n")
        found = shipping.user_modules({"cached_mod"})
        assert sorted(found) == ["cached_dep", "cached_mod", "cached_new"]
        assert sorted(parsed[2:]) == ["cached_mod.py", "cached_new.py"]  # the changed one
    finally:
        for name in ("cached_mod", "cached_dep", "cached_new"):
            sys.modules.pop(name, None)


def test_imports_are_found_at_any_depth_as_a_walk_of_every_node_finds_them(tmp_path) -> None:
    import ast

    source = """
import a1, a2.b
from . import rel
from ..up import thing
if x:
    import b1
elif y:
    from b2 import c as d
else:
    import b3
for i in range(3):
    import c1
else:
    import c2
while False:
    import c3
try:
    import d1
except ImportError:
    import d2
else:
    import d3
finally:
    import d4
with open(p) as f:
    import e1
def f():
    import f1
    def g():
        from f2 import *
    class K:
        import f3
async def h():
    async with x:
        import g1
    async for i in y:
        import g2
class C:
    def m(self):
        import h1
match v:
    case 1:
        import i1
    case _:
        try:
            pass
        except* ValueError:
            import i2
lam = lambda: __import__("not_a_statement")
"""
    path = tmp_path / "pkg" / "deep.py"
    path.parent.mkdir()
    path.write_text(source)
    found = shipping._file_imports("pkg.deep", str(path))
    tree = ast.parse(source)
    walked = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert len(list(shipping._import_statements(tree))) == len(walked) == 22
    expected = {"a1", "a2.b", "pkg", "pkg.rel", "pkg.up", "pkg.up.thing", "b1", "b2", "b2.c"}
    expected |= {"b3", "c1", "c2", "c3", "d1", "d2", "d3", "d4", "e1", "f1", "f2", "f3"}
    expected |= {"g1", "g2", "h1", "i1", "i2"}
    assert set(found) == expected
    assert found[:4] == ["a1", "a2.b", "pkg", "pkg.rel"]  # in source order


def test_installed_is_answered_without_sysconfig_outside_the_prefixes_and_agrees() -> None:
    import json as stdlib_module
    import os

    import cloudpickle

    paths = [stdlib_module.__file__, cloudpickle.__file__, __file__, "/nowhere/mod.py"]
    for path in paths:
        real = os.path.realpath(path)
        assert shipping._installed(real) == real.startswith(shipping._installed_dirs())
    assert shipping._installed(os.path.realpath(stdlib_module.__file__))
    assert not shipping._installed(os.path.realpath(__file__))


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
