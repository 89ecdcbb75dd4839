"""Stream chains of ``disco.worker.task_io`` (library.md 12) and ``disco.func`` (8)."""

from __future__ import annotations

import functools
import gzip
import io

from disco import func
from disco.fileutils import DiscoOutputStream
from disco.worker import task_io
from disco.worker.task_io import (
    StreamCombiner,
    chain_reader,
    disco_output_stream,
    gzip_line_stream,
    gzip_stream,
    plain_output_stream,
    re_reader,
    task_output_stream,
)


class Params:
    """Truthy, like the default ``Params()`` object."""


def test_three_and_four_argument_streams_and_tuple_results() -> None:
    seen = []

    def opener(fd, size, url):  # 3 args: no params
        seen.append(("opener", fd, size, url))
        return io.BytesIO(b"a\nb\n"), 4, url + "#opened"

    def upper(fd, size, url, params):  # 4 args: gets params, returns (stream, url)
        seen.append(("upper", size, url, params))
        return io.BytesIO(fd.read().upper()), url + "#upper"

    def lines(fd, size, url, params):  # bare stream result
        return (line.strip() for line in fd)

    params = Params()
    sc = StreamCombiner("raw://x", [opener, upper, lines], params)
    assert list(sc) == [b"A", b"B"]
    assert seen == [("opener", None, None, "raw://x"), ("upper", 4, "raw://x#opened", params)]
    assert sc.url == "raw://x#opened#upper" and len(sc.fds) == 3


def test_partial_with_four_positional_args_gets_params() -> None:
    def reader(prefix, fd, size, url, params):
        return [prefix + params]

    sc = StreamCombiner("raw://x", [functools.partial(reader, "p:")], "params")
    assert list(sc) == ["p:params"]


def test_params_never_toggles_ignore_corrupt() -> None:
    out = io.BytesIO()
    w = DiscoOutputStream(out)
    w.add(b"k", 1)
    w.close()
    bad = bytearray(out.getvalue())
    bad[2] ^= 0xFF  # CRC

    def source(fd, size, url, params):
        return io.BytesIO(bytes(bad)), len(bad), url

    sc = StreamCombiner("u", [source, chain_reader], Params())
    try:
        list(sc)
    except func.DataError:
        pass
    else:
        raise AssertionError("corrupt data was silently ignored")


def test_output_chain_writes_records_atomically(tmp_path) -> None:
    path = str(tmp_path / "t" / "out")
    sc = StreamCombiner(path, (task_output_stream, disco_output_stream), None)
    sc.add(b"k", [1, 2])
    sc.fds[-1].add(b"k2", None)
    sc.close()
    with open(path, "rb") as f:
        assert list(chain_reader(f, None, path)) == [(b"k", [1, 2]), (b"k2", None)]


def test_plain_output_stream(tmp_path) -> None:
    path = str(tmp_path / "plain")
    sc = StreamCombiner(path, (task_output_stream, plain_output_stream), None)
    sc.add("word", 3)
    sc.close()
    with open(path, "rb") as f:
        assert f.read() == b"4 word 1 3\n"


def test_gzip_streams(tmp_path) -> None:
    path = tmp_path / "in.gz"
    path.write_bytes(gzip.compress(b"one\ntwo\n"))
    sc = StreamCombiner(str(path), gzip_line_stream, None)
    assert list(sc) == [b"one\n", b"two\n"]
    sc.close()
    sc = StreamCombiner(str(path), gzip_stream, None)
    assert sc.fds[-1].read() == b"one\ntwo\n"
    sc.close()


def test_gzip_line_reader_stops_on_bad_input(capsys) -> None:
    got = list(task_io.gzip_line_reader(io.BytesIO(b"not gzip"), 8, "u", None))
    assert got == [] and "u" in capsys.readouterr().err


def test_string_input_stream_and_re_reader(capsys) -> None:
    fd, size, url = task_io.string_input_stream("ab", None, "u", None)
    assert (fd.read(), size) == ("ab", 2)
    data = b"a=1;b=2;tail"
    assert list(re_reader(rb"(\w)=(\d);", io.BytesIO(data), None, "u", output_tail=True)) == [
        (b"a", b"1"),
        (b"b", b"2"),
        [b"tail"],
    ]
    assert list(re_reader(rb"(\w)=(\d);", io.BytesIO(data), None, "u", read_buffer_size=3)) == [
        (b"a", b"1"),
        (b"b", b"2"),
    ]
    assert "Couldn't match the last 4 bytes" in capsys.readouterr().err
    try:
        list(re_reader(rb"(\w);", io.BytesIO(b"a;"), 10, "u"))
    except func.DataError as e:
        assert "Truncated input" in str(e)
    else:
        raise AssertionError("short input was not reported")


def test_named_chains() -> None:
    assert task_io.chain_stream == (task_io.task_input_stream, chain_reader)
    assert task_io.default_stream == (task_io.task_input_stream,)
    assert func.map_input_stream is task_io.task_input_stream is func.reduce_input_stream
    assert func.map_output_stream is task_io.task_output_stream
    assert func.chain_reader is chain_reader and func.netstr_reader is task_io.old_netstr_reader


def test_default_partition_is_deterministic_for_any_key() -> None:
    import hashlib

    assert func.default_partition("word", 7, None) == int(hashlib.md5(b"word").hexdigest(), 16) % 7
    assert func.default_partition(b"word", 7, None) == func.default_partition("word", 7, None)
    for key in (5, None, (1, "a"), 2.5):
        p = func.default_partition(key, 4, None)
        assert 0 <= p < 4 and p == func.default_partition(key, 4, None)


def test_make_range_partition_takes_three_args() -> None:
    part = func.make_range_partition(0, 100)
    assert [part(k, 5, None) for k in (0, 24, 50, 100)] == [0, 1, 2, 4]


def test_concrete_functions() -> None:
    assert list(func.nop_map(("k", "v"), None)) == [("k", "v")]
    buf: dict = {}
    for k, v in [("a", 1), ("b", 2), ("a", 3)]:
        assert func.sum_combiner(k, v, buf, False, None) is None
    assert dict(func.sum_combiner(None, None, buf, True, None)) == {"a": 4, "b": 2}
    assert dict(func.sum_reduce([("a", 1), ("a", 2)], None)) == {"a": 3}

    class Out:
        got: list = []

        def add(self, k, v):
            self.got.append((k, v))

    out = Out()
    func.nop_reduce([(1, 2)], out, None)
    assert out.got == [(1, 2)]
    assert func.noop(1, x=2) is None
    assert list(func.map_line_reader([b"a\n", b"b\r\n"], None, "u", None)) == [b"a", b"b"]


def test_stub_names_are_exported_but_listed() -> None:
    assert {"map", "reduce", "partition", "combiner"} <= func.STUB_NAMES
    assert "map" in func.__all__ and "default_partition" in func.__all__
    assert func.map("x", None) is None
    ns: dict = {}
    exec("from disco.func import *", ns)  # noqa: S102
    assert {"chain_reader", "sum_combiner", "persistent_hash", "re"} <= set(ns)
