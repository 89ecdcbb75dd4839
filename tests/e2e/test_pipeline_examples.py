"""The pipeline examples run as they stand; answers checked against plain Python."""

from __future__ import annotations

import importlib.util
import os
import random
from collections import Counter
from typing import Any

import pytest

from tests.e2e.test_examples import EXAMPLES, TEXT, run_example

pytestmark = pytest.mark.timeout(180)


def example_module(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plain_kmeans(points: list[list[float]], centers: list[list[float]], iterations: int) -> Any:
    for _ in range(iterations):
        groups: dict[int, list[list[float]]] = {}
        for p in points:
            dists = [sum((a - b) ** 2 for a, b in zip(p, c, strict=True)) for c in centers]
            groups.setdefault(dists.index(min(dists)), []).append(p)
        centers = [
            [sum(xs) / len(groups[i]) for xs in zip(*groups[i], strict=True)]
            if i in groups
            else centers[i]
            for i in range(len(centers))
        ]
    return centers


def test_kclustering_pipeline_matches_plain_kmeans() -> None:
    out = run_example("kclustering_pipeline.py", "--points", "600", "--k", "3", "--iterations", "3")
    got = [[float(x) for x in line.split()] for line in out.splitlines()]
    points = example_module("kclustering_pipeline").make_points(600, 3)
    want = plain_kmeans(points, [list(p) for p in points[:3]], 3)
    assert len(got) == 3
    for g, w in zip(got, want, strict=True):
        assert g == pytest.approx(w, abs=1e-5)


def test_wiki_reader_counts_every_word() -> None:
    out = run_example("wiki_reader.py", "--labels", "8", "--top", "100000")
    got = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}
    with open(TEXT, "rb") as f:
        want = Counter(w.decode() for w in f.read().split())
    assert got == dict(want)


def test_pipeline_sort_self_check() -> None:
    assert run_example("pipeline_sort.py").strip() == "sorted 20000 records: OK"


def test_pipeline_sort_of_a_given_file(tmp_path: Any) -> None:
    rng = random.Random(3)
    lines = [
        bytes(rng.randrange(33, 127) for _ in range(10)) + b"  payload %d\n" % i
        for i in range(5000)
    ]
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.write_bytes(b"".join(lines))
    run_example("pipeline_sort.py", str(inp), str(out), "--splits", "3", "--labels", "5")
    assert out.read_bytes() == b"".join(sorted(lines, key=lambda r: r[:10]))


def test_pipeline_sort_of_equal_and_short_keys(tmp_path: Any) -> None:
    """Keys repeated across blocks, splits and key ranges, and lines shorter than a key
    (the partition stage sorts each block and cuts it at the range boundaries): every
    line comes out once, in key order, equal keys of one split in input order."""
    rng = random.Random(5)
    keys = [bytes(rng.randrange(33, 127) for _ in range(rng.choice([2, 10]))) for _ in range(40)]
    lines = [rng.choice(keys) + b"  %d\n" % i for i in range(6000)] + [b"ab\n", b"\n", b"zz\n"]
    rng.shuffle(lines)
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.write_bytes(b"".join(lines))
    run_example("pipeline_sort.py", str(inp), str(out), "--splits", "1", "--labels", "4")
    assert out.read_bytes() == b"".join(sorted(lines, key=lambda r: r[:10]))
    run_example("pipeline_sort.py", str(inp), str(out), "--splits", "3", "--labels", "5")
    got = out.read_bytes().splitlines(keepends=True)
    assert sorted(got) == sorted(lines)
    assert [r[:10] for r in got] == sorted(r[:10] for r in lines)


def test_pipeline_sort_of_lines_with_carriage_returns_and_no_last_newline(tmp_path: Any) -> None:
    """The stages pass plain record lines between them: a line ends at ``\\n`` only (a
    ``\\r`` anywhere in it, at its end too, stays in the line) and the file's last line
    gets the newline it lacks, as ``LC_ALL=C sort`` gives them."""
    rng = random.Random(9)
    pieces = [b"\r", b"a\r", b"\r\r", b"", b"b", b"  x"]
    lines = [
        bytes(rng.randrange(33, 127) for _ in range(rng.choice([1, 9, 10, 12])))
        + rng.choice(pieces)
        + b" %d" % i
        + rng.choice(pieces)
        + b"\n"
        for i in range(3000)
    ]
    lines += [b"\r\n", b"\n", b"\r\r\n"]
    rng.shuffle(lines)
    inp, out = tmp_path / "in", tmp_path / "out"
    inp.write_bytes(b"".join(lines)[:-1])  # no newline at the end
    want = b"".join(sorted(lines, key=lambda r: r[:10]))
    run_example("pipeline_sort.py", str(inp), str(out), "--splits", "1", "--labels", "3")
    assert out.read_bytes() == want
    run_example("pipeline_sort.py", str(inp), str(out), "--splits", "3", "--labels", "4")
    got = [line + b"\n" for line in out.read_bytes().split(b"\n")]
    assert got.pop() == b"\n"  # the output ends with a newline
    assert sorted(got) == sorted(lines)
    assert sorted(got, key=lambda r: r[:10]) == got


def test_pipeline_sort_line_records_read_what_the_line_writer_wrote() -> None:
    """Stage ``sort`` reads stage ``partition``'s record lines with the example's input
    stream: the ``(line[:10], line)`` records of the lines ``add_lines`` wrote, lines cut
    by the 8 MiB blocks' ends and lines with ``\\r`` in them included."""
    import io

    module = example_module("pipeline_sort")
    rng = random.Random(13)
    lines = [
        b"%d" % i + rng.choice([b"", b"\r", b"x\ry", b"\r\r"]) + b"z" * rng.randrange(0, 400)
        for i in range(90000)
    ]
    lines = [line + b"\n" for line in lines] + [b"\n", b"\r\n", b"short\n"]
    written = io.BytesIO()
    writer = module.LineWriter(written)
    for start in range(0, len(lines), 7000):
        writer.add_lines(lines[start : start + 7000])
    data = written.getvalue()
    assert data == b"".join(lines) and len(data) > 2 * (8 << 20)
    for blob in (data, data[:-1], b"", b"\r", b"no newline"):
        got = list(module.line_records(io.BytesIO(blob), len(blob), "file://x", None))
        *ended, last = blob.split(b"\n")
        want = [line + b"\n" for line in ended] + ([last] if last else [])
        assert got == [(line[:10], line) for line in want]


def test_pipeline_sort_line_writer_add_all_writes_what_add_writes() -> None:
    """The sort stage writes its whole sorted stream with one ``add_all`` call (joined a
    batch at a time): the same bytes as one ``add`` per ``(key, line)`` record, any count
    of records."""
    import io

    writer_class = example_module("pipeline_sort").LineWriter
    rng = random.Random(11)
    for count in (0, 1, 8191, 8192, 8193, 20000):
        lines = [b"%010d  %d\n" % (rng.randrange(10**9), i) for i in range(count)]
        records = [(line[:10], line) for line in lines]
        one, many = io.BytesIO(), io.BytesIO()
        writer = writer_class(one)
        for key, line in records:
            writer.add(key, line)
        writer_class(many).add_all(iter(records))
        assert many.getvalue() == one.getvalue() == b"".join(lines)


def test_pipeline_sort_module_leaves_the_client_modules_to_the_client() -> None:
    """The job's warm process imports the example (its stage functions are pickled by
    reference) before the first task: ``disco.core`` and ``disco.embedded`` (asyncio,
    ssl), which only the client uses, are imported by ``sort_file``, not the module."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, %r); import pipeline_sort; "
        "print(sorted(m for m in ('disco.core', 'disco.embedded', 'asyncio', 'ssl') "
        "if m in sys.modules))" % EXAMPLES
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pipeline_sort_samples_keys_as_seek_and_readline_would(tmp_path: Any) -> None:
    """``sample_bounds`` reads each sample with one small ``pread``: the same key as
    ``seek`` + ``readline`` + ``readline()[:10]`` at every offset of a file with short
    lines, lines longer than the read, and no newline at its end."""
    module = example_module("pipeline_sort")
    rng = random.Random(5)
    lengths = [rng.choice([0, 3, 9, 10, 11, 40, 600]) for _ in range(60)]
    lines = [bytes(rng.randrange(33, 127) for _ in range(n)) + b"\n" for n in lengths]
    data = b"".join(lines) + b"no newline at the end"
    path = tmp_path / "records"
    path.write_bytes(data)
    with open(path, "rb") as f:
        for chunk in (16, 64, 512):
            for offset in range(len(data)):
                f.seek(offset)
                f.readline()
                want = f.readline()[:10]
                assert module._key_after(f, f.fileno(), offset, chunk) == want, (offset, chunk)


def test_pipeline_sort_range_blocks_give_whole_lines_across_blocks(tmp_path: Any) -> None:
    """The input chain reads 8 MiB at a time and gives lists of whole lines: a line cut
    by a block's end is completed (its rest added to it), none lost or doubled."""
    module = example_module("pipeline_sort")
    rng = random.Random(3)
    lines = [b"%d" % i + b"x" * rng.randrange(0, 300) + b"\n" for i in range(120000)]
    data = b"".join(lines)
    assert len(data) > 2 * (8 << 20)  # three blocks, cut mid-line
    path = tmp_path / "records"
    path.write_bytes(data)
    for start, end in [*module.line_ranges(str(path), 3), (0, len(data))]:
        url = "raw://%s:%d:%d" % (path, start, end)
        blocks = list(module.range_blocks(None, None, url, None))
        got = [line for block in blocks for line in block]
        assert b"".join(got) == data[start:end]
        assert all(line.endswith(b"\n") for line in got)
        assert len(got) == data[start:end].count(b"\n")


@pytest.fixture
def redis_servers(tmp_path: Any) -> Any:
    """Three throw-away redis-servers, one per node of the ``cluster`` fixture."""
    from contextlib import ExitStack

    from tests.schemes.servers import redis_server, redis_server_path

    if redis_server_path() is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    with ExitStack() as stack:
        yield [stack.enter_context(redis_server(str(tmp_path))) for _ in range(3)]


def test_wordcount_redis_pipe_example(redis_servers: Any) -> None:
    host, port = redis_servers[0]
    out = run_example("wordcount_redis_pipe.py", "--redis", "%s:%d" % (host, port))
    got = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}
    with open(TEXT, "rb") as f:
        assert got == dict(Counter(w.decode() for w in f.read().split()))


def test_wordcount_redis_pipe_keeps_records_in_each_nodes_redis(
    cluster: Any, redis_servers: Any
) -> None:
    from disco.schemes import scheme_redis

    module = example_module("wordcount_redis_pipe")
    nodes = ["localhost", "127.0.0.2", "127.0.0.3"]
    servers = {node: "%s:%d" % hp for node, hp in zip(nodes, redis_servers, strict=True)}
    texts = {"localhost": "to be or not", "127.0.0.2": "to be", "127.0.0.3": "be quick"}
    inputs = ["raw://%s:%s" % (node, text) for node, text in texts.items()]
    got = module.word_count(inputs, servers, labels=3, master=cluster.url)
    # group_node: one map task per node; raw://<node>:<text> is read as "<node>:<text>"
    want = Counter(w for url in inputs for w in url[len("raw://") :].split())
    assert got == {w.encode(): n for w, n in want.items()}
    for node, text in texts.items():
        held = set()
        for db in range(3):
            held |= set(scheme_redis.connect("redis://%s:%d" % (servers[node], db)).keys())
        assert held == {w.encode() for w in ("%s:%s" % (node, text)).split()}
