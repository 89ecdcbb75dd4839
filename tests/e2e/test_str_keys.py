"""str where a Python 3 user expects it (issue 12.4): str keys written by a task come
back as str, also through a sorted (external sort) stage; file lines stay bytes (0.5)."""

from __future__ import annotations

from disco.core import Job, result_iterator
from disco.worker.pipeline.worker import Stage, Worker


def line_types(line, params):
    yield type(line).__name__, 1


def decoded_words(line, params):
    for word in line.decode("utf-8").split():
        yield word, 1


def split_words(interface, state, label, inp):
    for line in inp:
        for word in line.decode("utf-8").split():
            interface.output(0).add(word, 1)


def add_up(interface, state, label, inp):
    from disco.util import kvgroup

    out = interface.output(label)
    for word, counts in kvgroup(inp):
        out.add(word, sum(counts))


def test_file_lines_are_bytes_and_str_keys_come_back_as_str(master, tmp_path) -> None:
    path = tmp_path / "text.txt"
    path.write_text("b Été a\na b\n", encoding="utf-8")
    url = path.as_uri()
    job = Job(master=master.url).run(input=[url], map=line_types)
    assert list(result_iterator(job.wait())) == [("bytes", 1), ("bytes", 1)]
    job = Job(master=master.url).run(input=[url], map=decoded_words)
    results = list(result_iterator(job.wait()))
    assert sorted(results) == [("a", 1), ("a", 1), ("b", 1), ("b", 1), ("Été", 1)]
    assert all(type(key) is str for key, _ in results)


def test_str_keys_through_a_sorted_pipeline_stage(master, tmp_path) -> None:
    path = tmp_path / "text.txt"
    path.write_text("zebra Été apple\napple zebra\n", encoding="utf-8")
    job = Job(master=master.url, worker=Worker()).run(
        input=[path.as_uri()],
        pipeline=[
            ("split", Stage("map", process=split_words)),
            ("group_label", Stage("reduce", process=add_up, combine=True, sort=True)),
        ],
    )
    assert list(result_iterator(job.wait())) == [("apple", 2), ("zebra", 2), ("Été", 1)]
