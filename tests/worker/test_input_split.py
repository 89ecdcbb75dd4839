"""Cutting a large local input into line-aligned ranges and reading a range (issue 13).

Every line of the file is read whole and exactly once, in file order, whatever the split
size: lines crossing the cut points, no trailing newline, empty lines, UTF-8 characters of
several bytes at a cut, a file smaller than one split, many splits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disco import schemes
from disco.schemes.file_range import parse_range, range_url
from disco.worker.classic.func import map_line_reader
from disco.worker.classic.input_split import (
    line_cuts,
    local_file,
    split_inputs,
    splittable,
)
from disco.worker.task_io import chain_reader, gzip_line_reader, task_input_stream

TEXT = (
    "first line crosses the cuts\n"
    "\n"
    "\n"
    "é漢字😀 multibyte around the cuts é漢字😀\n"
    "short\n"
    "\n"
    "the last line has no newline éé"
).encode()


def lines_of_ranges(path: Path, size: int) -> list[bytes]:
    """The lines the map tasks of ``path`` cut at ``size`` see, task after task."""
    out: list[bytes] = []
    for url in split_inputs([path.as_uri()], size):
        with schemes.open(url) as f:
            out.extend(f)
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 29, 30, 31, 64, len(TEXT) - 1])
def test_every_line_whole_and_once_in_order(tmp_path: Path, size: int) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(TEXT)
    assert lines_of_ranges(path, size) == TEXT.splitlines(keepends=True)
    for url in split_inputs([path.as_uri()], size):
        with schemes.open(url) as f:
            f.read().decode("utf-8")  # every range is whole UTF-8: cut after a newline


def test_cuts_are_right_after_newlines_and_cover_the_file(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(TEXT)
    for size in range(1, len(TEXT) + 2):
        ranges = line_cuts(str(path), size)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(TEXT)
        assert all(a < b for a, b in ranges)
        assert all(prev[1] == nxt[0] for prev, nxt in zip(ranges, ranges[1:], strict=False))
        assert all(TEXT[start - 1 : start] == b"\n" for start, _ in ranges[1:])


def test_many_splits_one_per_line(tmp_path: Path) -> None:
    path = tmp_path / "many.txt"
    lines = [b"line %d\n" % i for i in range(500)]
    path.write_bytes(b"".join(lines))
    urls = split_inputs([path.as_uri()], 1)
    assert len(urls) == 500
    assert lines_of_ranges(path, 1) == lines


def test_a_file_not_larger_than_one_split_stays_whole(tmp_path: Path) -> None:
    path = tmp_path / "small.txt"
    path.write_bytes(TEXT)
    url = path.as_uri()
    assert split_inputs([url], len(TEXT)) == [url]
    assert split_inputs([url], 1 << 30) == [url]
    assert split_inputs([url], 0) == [url]  # 0 turns splitting off


def test_a_long_line_spanning_several_cut_points_is_one_range(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(b"x" * 1000 + b"\nshort\n" + b"y" * 300)
    assert line_cuts(str(path), 100) == [(0, 1001), (1001, 1307)]  # no cut in the y line
    assert lines_of_ranges(path, 100) == [b"x" * 1000 + b"\n", b"short\n", b"y" * 300]


def test_empty_and_newline_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert split_inputs([empty.as_uri()], 1) == [empty.as_uri()]
    newlines = tmp_path / "newlines.txt"
    newlines.write_bytes(b"\n" * 10)
    assert lines_of_ranges(newlines, 3) == [b"\n"] * 10


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(st.characters(blacklist_characters="\n\r"), max_size=12), max_size=30),
    st.booleans(),
    st.integers(1, 40),
)
def test_any_text_any_split_size(tmp_path_factory, lines, trailing, size) -> None:
    data = "\n".join(lines).encode("utf-8", "surrogatepass") + (b"\n" if trailing else b"")
    path = tmp_path_factory.mktemp("h") / "t.txt"
    path.write_bytes(data)
    assert lines_of_ranges(path, size) == data.splitlines(keepends=True)


def test_range_reader_contract(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(b"0123456789\nabc\n")
    url = range_url(path.as_uri(), 11, 15)
    stream, size, same_url = task_input_stream(None, None, url, None)
    assert (size, same_url, len(stream), stream.read()) == (4, url, 4, b"abc\n")
    stream.close()
    bare = range_url(str(path), 0, 11)  # a bare path has ranges too
    with schemes.open(bare) as f:
        assert list(f) == [b"0123456789\n"]
    assert parse_range(str(path)) is None


def test_range_with_end_before_start_is_refused(tmp_path: Path) -> None:
    from disco.error import DataError

    with pytest.raises(DataError):
        parse_range(str(tmp_path / "x") + "#range=5-1")


def test_a_file_whose_name_looks_like_a_range_is_read_whole(tmp_path: Path) -> None:
    odd = tmp_path / "data.txt#range=0-2"
    odd.write_bytes(b"whole file\n")
    with schemes.open("file://" + str(odd)) as f:
        assert f.read() == b"whole file\n"


def test_only_local_regular_files_by_absolute_path_are_split(tmp_path: Path) -> None:
    path = tmp_path / "text.txt"
    path.write_bytes(TEXT)
    assert local_file(path.as_uri()) == str(path)
    assert local_file(str(path)) == str(path)
    for other in [
        "text.txt",  # relative: the node's working directory is not the client's
        "raw://abc",
        "http://host/x",
        "tag://data",
        str(tmp_path),  # a directory
        str(tmp_path / "missing.txt"),
        ["file://" + str(path), "file://" + str(path)],  # replicas: kept as given
    ]:
        assert local_file(other) is None
        assert split_inputs([other], 1) == [other]


def test_only_the_default_line_reader_is_split() -> None:
    assert splittable(None, (task_input_stream,))
    assert splittable(None, task_input_stream)
    assert not splittable(map_line_reader, (task_input_stream,))
    assert not splittable(gzip_line_reader, (task_input_stream,))
    assert not splittable(None, (task_input_stream, chain_reader))
    assert not splittable(None, ())
