"""Jobs over a large local input split into several map tasks (issue 13), on a real master.

The split job gives exactly the results of the same job with splitting turned off
(``split_size=0``): the same records in the same order for a map-only job, the same
counts for a map + reduce job; the map sees whole lines; a job with its own
``map_reader`` keeps the file as one input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from disco.core import result_iterator
from disco.job import Job
from disco.worker.classic.func import map_line_reader, sum_combiner
from disco.worker.classic.worker import Worker

pytestmark = pytest.mark.timeout(180)

LINES = [
    "the first line is long enough to cross several cut points: " + "word " * 20,
    "",
    "é漢字😀 multibyte characters é漢字😀 at the cuts é漢字😀",
    "",
    "",
    "short",
] * 7 + ["the last line has no newline é"]
TEXT = "\n".join(LINES).encode("utf-8")


def whole_lines(line: bytes, params: Any) -> Any:
    """One record per line: its text, and whether it arrived whole."""
    text = line.decode("utf-8")  # a line cut inside a character would not decode
    yield text.rstrip("\n"), line.endswith(b"\n")


def words(line: bytes, params: Any) -> Any:
    for word in line.decode("utf-8").split():
        yield word, 1


def add_up(iter: Any, params: Any) -> Any:
    from disco.util import kvgroup

    for word, counts in kvgroup(iter):
        yield word, sum(counts)


def map_inputs(master: Any, **jobargs: Any) -> list[Any]:
    """The map inputs the job would be submitted with."""
    return Worker().jobdict(Job(master=master.url), **jobargs)["input"]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "text.txt"
    path.write_bytes(TEXT)
    return path


@pytest.mark.parametrize("split_size", [1, 37, 100, 512])
def test_map_only_job_split_gives_the_unsplit_results(
    master: Any, text_file: Path, split_size: int
) -> None:
    url = text_file.as_uri()
    args = dict(input=[url], map=whole_lines, partitions=None)
    assert len(map_inputs(master, split_size=split_size, **args)) > 1  # several map tasks
    whole = Job(master=master.url).run(split_size=0, **args)
    split = Job(master=master.url).run(split_size=split_size, **args)
    unsplit_records = list(result_iterator(whole.wait()))
    assert list(result_iterator(split.wait())) == unsplit_records  # same records, same order
    assert [line for line, _whole in unsplit_records] == TEXT.decode("utf-8").split("\n")
    assert [ended for _line, ended in unsplit_records] == [True] * (len(LINES) - 1) + [False]


def test_one_partition_map_only_job_split_gives_the_unsplit_records(
    master: Any, text_file: Path
) -> None:
    url = text_file.as_uri()
    whole = Job(master=master.url).run(input=[url], map=whole_lines, split_size=0)
    split = Job(master=master.url).run(input=[url], map=whole_lines, split_size=50)
    expected = list(result_iterator(whole.wait()))
    assert sorted(result_iterator(split.wait())) == sorted(expected)


def test_map_reduce_job_split_gives_the_unsplit_counts(master: Any, text_file: Path) -> None:
    url = str(text_file)  # a bare absolute path is split too
    args = dict(map=words, reduce=add_up, sort=True, combiner=sum_combiner)
    assert len(map_inputs(master, input=[url], **args, split_size=64)) > 3
    whole = Job(master=master.url).run(input=[url], split_size=0, **args)
    split = Job(master=master.url).run(input=[url], split_size=64, **args)
    expected = sorted(result_iterator(whole.wait()))
    assert sorted(result_iterator(split.wait())) == expected
    assert dict(expected)["é漢字😀"] == 3 * 7


def test_a_file_smaller_than_one_split_is_one_map_task(master: Any, text_file: Path) -> None:
    url = text_file.as_uri()
    assert map_inputs(master, input=[url], map=words) == [url]  # default: 32 MiB
    job = Job(master=master.url).run(input=[url], map=whole_lines)
    assert len(job.wait()) == 1


def test_a_custom_map_reader_keeps_the_file_whole(master: Any, text_file: Path) -> None:
    url = text_file.as_uri()
    args = dict(input=[url], map=words, map_reader=map_line_reader, split_size=1)
    assert map_inputs(master, **args) == [url]
    job = Job(master=master.url).run(**args)
    results = job.wait()
    assert len(results) == 1
    assert sum(count for _word, count in result_iterator(results)) == len(TEXT.split())
