"""One ``read_index`` (issue 13): ``disco.worker.read_index`` is ``disco.util``'s, which
reads an index on this node from its file, and parses every line as 16.3 says."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace

import pytest

import disco.worker
from disco import util
from disco.error import DataError
from disco.worker import task_io


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def test_one_function_and_one_line_parser() -> None:
    assert disco.worker.read_index is util.read_index
    assert task_io.parse_index_line is util.parse_index_line


def test_local_and_gzipped_indexes_with_the_task_given_by_position(tmp_path: Path) -> None:
    task = SimpleNamespace(host="n1", disco_port=1, disco_data=str(tmp_path), ddfs_data="/f")
    lines = b"1 disco://n1/disco/n1/J/b 20\n\n0 disco://n1/disco/n1/J/a 10\n"
    write(tmp_path / "n1" / "J" / "i", lines)
    write(tmp_path / "n1" / "J" / "i.gz", lines)
    want = [(1, "disco://n1/disco/n1/J/b", 20), (0, "disco://n1/disco/n1/J/a", 10)]
    assert list(disco.worker.read_index("dir://n1/disco/n1/J/i", task)) == want
    assert list(util.read_index(["dir://n1/disco/n1/J/i.gz"], task=task)) == want
    assert list(util.read_index(b"file://%s" % str(tmp_path / "n1/J/i").encode())) == want


@pytest.mark.parametrize("line", [b"0 disco://x/a\n", b"all disco://x/a 3\n", b"0 u 1 2\n"])
def test_a_line_that_is_not_label_url_size_is_a_data_error(tmp_path: Path, line: bytes) -> None:
    for name in ("i", "i.gz"):
        write(tmp_path / name, line)
        with pytest.raises(DataError, match="Corrupted index"):
            list(util.read_index("file://%s" % (tmp_path / name)))
