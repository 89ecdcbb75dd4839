"""``disco.compat`` (library.md 1, 8.2, 16.5): the Py2/Py3 shims job code imports."""

from __future__ import annotations

import hashlib
import io
import subprocess

from disco import compat


def test_bytes_and_str() -> None:
    assert compat.bytes_to_str(b"caf\xc3\xa9") == "café"
    assert compat.bytes_to_str("already") == "already"
    assert compat.bytes_to_str(b"\xff") == "\ufffd"  # undecodable bytes are replaced
    assert compat.str_to_bytes("café") == b"caf\xc3\xa9"
    assert compat.str_to_bytes(bytearray(b"x")) == b"x"
    assert compat.basestring is str and compat.unicode is str and compat.integer_types == (int,)


def test_dict_iterators_and_pickle_shorthands() -> None:
    d = {"a": 1}
    assert list(compat.iteritems(d)) == [("a", 1)]
    assert list(compat.iterkeys(d)) == ["a"] and list(compat.itervalues(d)) == [1]
    assert compat.pickle_loads(compat.pickle_dumps({"k": [1, 2]})) == {"k": [1, 2]}
    buf = io.BytesIO()
    compat.pickle_dump((1, "x"), buf, 2)
    buf.seek(0)
    assert compat.pickle_load(buf) == (1, "x")


def test_persistent_hash_is_md5_and_stable() -> None:
    assert compat.persistent_hash("key") == int(hashlib.md5(b"key").hexdigest(), 16)
    assert compat.persistent_hash(b"key") == compat.persistent_hash("key")
    assert compat.persistent_hash(42) == int(hashlib.md5(b"42").hexdigest(), 16)


def test_sort_cmd_sorts_nul_records_by_the_first_field(tmp_path) -> None:
    path = tmp_path / "sortme"
    path.write_bytes(b"b\xff2\x00a\xff1\x00\xc3\xa9\xff3\x00")
    argv, env = compat.sort_cmd(str(path), "1M")
    assert argv[:5] == [b"sort", b"-z", b"-t", b"\xff", b"-k"] and env == {"LC_ALL": "C"}
    subprocess.run(argv, env=env, check=True, cwd=tmp_path)
    assert path.read_bytes() == b"a\xff1\x00b\xff2\x00\xc3\xa9\xff3\x00"  # byte order


#: Every public name of 0.5's ``disco.compat`` (issue 11.1) and its Python 3 meaning.
COMPAT_05 = {
    "basestring": str,
    "unicode": str,
    "StringIO": io.StringIO,
    "BytesIO": io.BytesIO,
    "file": io.FileIO,
    "pickle": __import__("pickle"),
    "UnpicklingError": __import__("pickle").UnpicklingError,
    "socket_server": __import__("socketserver"),
    "urlencode": __import__("urllib.parse", fromlist=["urlencode"]).urlencode,
    "httplib": __import__("http.client", fromlist=["client"]),
    "http_server": __import__("http.server", fromlist=["server"]),
    "zip_longest": __import__("itertools").zip_longest,
    "md5": hashlib.md5,
}
COMPAT_05_FUNCTIONS = [
    "bytes_of_int",
    "int_of_byte",
    "str_to_bytes",
    "bytes_to_str",
    "force_utf8",
    "force_ascii",
    "pickle_loads",
    "pickle_dumps",
    "pickle_load",
    "pickle_dump",
    "sort_cmd",
    "integer_types",
    "iteritems",
    "iterkeys",
    "itervalues",
    "persistent_hash",
]


def test_every_public_name_of_0_5_compat_imports_with_its_python3_meaning() -> None:
    namespace: dict = {}
    names = ", ".join([*COMPAT_05, *COMPAT_05_FUNCTIONS])
    exec("from disco.compat import %s" % names, namespace)  # noqa: S102
    for name, meaning in COMPAT_05.items():
        assert namespace[name] is meaning, name
    assert set(COMPAT_05) | set(COMPAT_05_FUNCTIONS) <= set(compat.__all__)
    star: dict = {}
    exec("from disco.compat import *", star)  # noqa: S102
    assert {"BytesIO", "http_server", "zip_longest", "md5"} <= set(star)


def test_the_0_5_compat_names_work(tmp_path) -> None:
    assert compat.bytes_of_int(255) == b"\xff" and compat.int_of_byte(b"\xff") == 255
    assert compat.int_of_byte(b"ab"[0]) == 97
    assert compat.force_utf8("é") == "é" and compat.force_ascii("x") == "x"
    buf = compat.BytesIO()
    compat.pickle.dump({"a": 1}, buf)
    assert compat.pickle_loads(buf.getvalue()) == {"a": 1}
    assert compat.urlencode({"q": "a b"}) == "q=a+b"
    assert list(compat.zip_longest("ab", "c")) == [("a", "c"), ("b", None)]
    assert compat.md5(b"x").hexdigest() == hashlib.md5(b"x").hexdigest()
    path = tmp_path / "f"
    path.write_bytes(b"data")
    with compat.file(str(path)) as f:
        assert f.read() == b"data"
    text = compat.StringIO()
    text.write("x")
    assert text.getvalue() == "x"
    assert compat.httplib.OK == 200 and compat.http_server.HTTPServer
    assert compat.socket_server.TCPServer is compat.http_server.HTTPServer.__mro__[1]
