"""modutil (library.md 14), dPickle, sysutil (15), netstring and external programs (10.5)."""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
import textwrap
import time

import pytest

from disco import dPickle, sysutil
from disco.worker import modutil
from disco.worker.classic import external, netstring


def uses_modules(x):
    return os.path.abspath(x), random.random(), time.time()


def test_find_modules_without_sending() -> None:
    assert modutil.find_modules([uses_modules], send_modules=False) == ["os", "random", "time"]
    assert modutil.find_modules([uses_modules], send_modules=False, exclude=["os"]) == [
        "random",
        "time",
    ]


def test_parse_function_sees_lambdas_partials_and_skips_non_modules() -> None:
    import functools

    def f(params, x):
        y = [time.time() for _ in range(2)]
        return params.value, (lambda: random.choice(y))(), len(y)

    assert sorted(modutil.parse_function(functools.partial(f, None))) == ["random", "time"]
    assert modutil.parse_function(len) == []


def test_local_modules_are_shipped(tmp_path, monkeypatch) -> None:
    (tmp_path / "helper_mod_a.py").write_text(
        "import helper_mod_b\ndef f():\n    return helper_mod_b.g()\n"
    )
    (tmp_path / "helper_mod_b.py").write_text("def g():\n    return 1\n")
    job = tmp_path / "myjob.py"
    job.write_text("import helper_mod_a\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.syspath_prepend(str(tmp_path))
    ns: dict = {}
    exec("import helper_mod_a, os\ndef fn(x):\n    return helper_mod_a.f(), os.sep\n", ns)  # noqa: S102
    got = modutil.find_modules([ns["fn"]], job_path=str(job))
    assert got == [
        ("helper_mod_a", str(tmp_path / "helper_mod_a.py")),
        ("helper_mod_b", str(tmp_path / "helper_mod_b.py")),
        ("myjob", str(job)),
        "os",
    ]
    assert modutil.locate_modules(["os"]) == []
    assert modutil.locate_modules(["os"], include_sys=True) == [("os", None)]
    assert str(tmp_path) in modutil.user_paths()


def test_missing_module_is_modutil_import_error() -> None:
    ns: dict = {"__name__": "x"}
    exec("def fn():\n    return no_such_module_xyz.f()\n", ns)  # noqa: S102
    with pytest.raises(modutil.ModUtilImportError) as e:
        modutil.find_modules([ns["fn"]])
    assert isinstance(e.value, ImportError) and e.value.function is ns["fn"]
    assert "required_modules" in str(e.value) and "fn" in str(e.value)


def test_dpickle_ships_main_functions_by_value(tmp_path) -> None:
    out = tmp_path / "pickled"
    script = textwrap.dedent(
        """
        import sys
        from disco import dPickle
        def double(x):
            return 2 * x
        class Box:
            def __init__(self, v):
                self.v = v
        with open(sys.argv[1], "wb") as f:
            f.write(dPickle.dumps((double, Box(3), lambda y: y + 1), -1))
        """
    )
    subprocess.run([sys.executable, "-c", script, str(out)], check=True, timeout=30)
    double, box, inc = dPickle.loads(out.read_bytes())
    assert (double(4), box.v, inc(1)) == (8, 3, 2)
    assert dPickle.loads(dPickle.dumps(os.path.join)) is os.path.join


def test_sysutil_limits(tmp_path) -> None:
    assert sysutil.available_memory() > 0
    assert sysutil.mem_limit_bytes("50%") == sysutil.available_memory() // 2
    assert sysutil.mem_limit_bytes(1234) == 1234
    script = "from disco import sysutil; import resource; sysutil.set_mem_limit('80%'); print(resource.getrlimit(resource.RLIMIT_AS)[0])"
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=30
    )
    assert int(res.stdout) == int(sysutil.available_memory() * 0.8)


def test_netstring_round_trip() -> None:
    block = netstring.encode_netstring_fd({"key": "value", "n": 12})
    assert block == b"23\n3 key 5 value\n1 n 2 12\n"
    assert netstring.decode_netstring_fd(io.BytesIO(block)) == {"key": "value", "n": "12"}
    with pytest.raises(netstring.NetStringError):
        netstring.decode_netstring_str(b"5 abc")


OP = """#!{python}
import struct, sys
inp, out = sys.stdin.buffer, sys.stdout.buffer
U = struct.Struct("=I")
size = int(inp.readline())
params = inp.read(size)
def read(n):
    data = inp.read(n)
    return data
def pair():
    h = read(4)
    if not h:
        return None
    k = read(U.unpack(h)[0])
    v = read(U.unpack(read(4))[0])
    return k, v
def send(pairs):
    out.write(U.pack(len(pairs)))
    for k, v in pairs:
        out.write(U.pack(len(k)) + k + U.pack(len(v)) + v)
    out.flush()
if sys.argv[1] == "map":
    sys.stderr.write("**<MSG> started with %d bytes of params\\n" % size)
    sys.stderr.flush()
    while True:
        p = pair()
        if p is None:
            break
        if p[1] == b"fail":
            sys.stderr.write("**<ERR> bad input\\n")
            sys.stderr.flush()
            sys.exit(1)
        send([(w, b"1") for w in p[1].split()] + [(b"params", params)])
else:
    counts = {{}}
    while True:
        p = pair()
        if p is None:
            break
        counts[p[0]] = counts.get(p[0], 0) + int(p[1])
    send([(k, str(v).encode()) for k, v in sorted(counts.items())])
"""


def make_program(tmp_path) -> dict:
    exe = tmp_path / "prog.py"
    exe.write_text(OP.format(python=sys.executable))
    support = tmp_path / "data.txt"
    support.write_text("support")
    program = external.package([str(exe), str(support)])
    assert set(program) == {"op", "data.txt"}
    return program


def test_external_map_and_reduce(tmp_path, capsys) -> None:
    program = make_program(tmp_path)
    proc = external.prepare(program, {"a": "b"}, str(tmp_path / "ext.map"))
    try:
        assert (tmp_path / "ext.map" / "data.txt").read_text() == "support"
        assert external.ext_map(b"x y", None) == [
            (b"x", b"1"),
            (b"y", b"1"),
            (b"params", b"1 a 1 b\n"),
        ]
        assert proc.map(("key", "z")) == [(b"z", b"1"), (b"params", b"1 a 1 b\n")]
        with pytest.raises(external.ExternalError, match="bad input"):
            proc.map(b"fail")
    finally:
        external.close_ext()
    assert "started with 8 bytes of params" in capsys.readouterr().err

    class Out:
        def __init__(self):
            self.got = []

        def add(self, k, v):
            self.got.append((k, v))

    external.prepare(program, None, str(tmp_path / "ext.reduce"))
    out = Out()
    try:
        external.ext_reduce([(b"a", b"1"), (b"b", b"2"), (b"a", b"3")], out, None)
    finally:
        external.close_ext()
    assert out.got == [(b"a", b"4"), (b"b", b"2")]


def missing_module():
    return missing_module_ifitexiststhistestwillfail.magic()  # noqa: F821


def test_find_modules_of_a_missing_module_raises_like_0_5() -> None:
    """Issue 11.3: a ``name.attr`` whose name is no global, builtin or injected name is a
    module the node would need; when it cannot be found, ``find_modules`` says so."""
    with pytest.raises(modutil.ModUtilImportError) as e:
        modutil.find_modules([missing_module])
    assert e.value.function is missing_module
    assert "missing_module_ifitexiststhistestwillfail" in str(e.value)
    assert modutil.find_modules([missing_module], send_modules=False) == [
        "missing_module_ifitexiststhistestwillfail"
    ]


def test_injected_aliased_and_non_identifier_names() -> None:
    import os.path as osp

    from disco import util

    ns: dict = {"osp": osp, "util": util, "Task": None}
    source = "def fn(x):\n    return osp.join(x), util.kvgroup(x), Task.jobname, this_name.x\n"
    exec(source, ns)  # noqa: S102
    fn = ns["fn"]
    assert sorted(modutil.parse_function(fn)) == ["disco.util", osp.__name__]
    assert not modutil.is_module_name("@pytest_ar") and not modutil.is_module_name("class")
