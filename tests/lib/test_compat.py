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
