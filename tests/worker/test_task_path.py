"""What a forked task does on its way from fork to DONE costs no more work than it needs
(issue 11 point 8): each test fails if a step that a tiny map task repeats comes back."""

from __future__ import annotations

import io
import os
import pickle
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from disco import fileutils, schemes
from disco.task import Task
from disco.worker import InputIter
from disco.worker.task_io import disco_input_stream


def _boom(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("not on a task's path")


def _records(data: bytes) -> list[Any]:
    return list(disco_input_stream(io.BytesIO(data), len(data), "test://"))


@pytest.mark.parametrize("level", [1, 2, 6, 9])
def test_the_closing_empty_hunk_is_made_once(monkeypatch: pytest.MonkeyPatch, level: int) -> None:
    # 0.5's bytes: a header with the CRC-32 of nothing and zlib.compress(b"", level)
    empty = zlib.compress(b"", level)
    assert (
        fileutils.empty_hunk(1, level) == fileutils.HUNK_HEADER.pack(129, 1, 0, len(empty)) + empty
    )
    compressed: list[bytes] = []
    real = zlib.compress

    def spy(data: Any, *args: Any) -> bytes:
        compressed.append(bytes(data))
        return real(data, *args)

    monkeypatch.setattr(fileutils.zlib, "compress", spy)
    out = io.BytesIO()
    stream = fileutils.DiscoOutputStream_v1(out, compression_level=level)
    stream.add("k", "v")
    stream.close()
    assert b"" not in compressed  # no deflate state set up for the 8 bytes
    assert out.getvalue().endswith(fileutils.empty_hunk(1, level))
    assert _records(out.getvalue()) == [("k", "v")]


def test_an_empty_stream_is_one_empty_hunk() -> None:
    out = io.BytesIO()
    stream = fileutils.DiscoOutputStream_v1(out)
    stream.close()
    assert out.getvalue() == fileutils.encode_hunk(b"") and stream.size == len(out.getvalue())
    assert _records(out.getvalue()) == []


def test_a_stream_of_flat_records_makes_one_pickler(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []

    class Counting(pickle.Pickler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(fileutils.pickle, "Pickler", Counting)
    out = io.BytesIO()
    stream = fileutils.DiscoOutputStream_v1(out)
    for n in range(100):
        stream.add(str(n), n * n)
    assert len(made) == 1  # the fast one only
    shared = ["x"]
    stream.add("pair", (shared, shared))  # not flat: the pickler with a memo, made now
    stream.add("again", (shared, shared))
    assert len(made) == 2
    stream.close()
    got = _records(out.getvalue())
    assert got[:100] == [(str(n), n * n) for n in range(100)]
    assert got[100:] == [("pair", (["x"], ["x"])), ("again", (["x"], ["x"]))]
    assert got[100][1][0] is got[100][1][1]  # the memo kept the shared object shared


def test_a_failed_record_then_others(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.BytesIO()
    stream = fileutils.DiscoOutputStream_v1(out)
    stream.add("a", 1)
    with pytest.raises((TypeError, AttributeError, pickle.PicklingError)):
        stream.add("bad", (lambda: None,))  # the first non-flat record fails
    stream.add("b", [2])
    stream.close()
    assert _records(out.getvalue()) == [("a", 1), ("b", [2])]


def test_scratch_directory_is_one_mkdir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    first = Task(stage="map", taskid=1, group=[0, "h"])
    first.makedirs()  # its hash directory too
    assert os.path.isdir(first.taskpath)
    second = Task(stage="map", taskid=2, group=[0, "h"])
    os.makedirs(os.path.dirname(second.taskpath), exist_ok=True)
    with monkeypatch.context() as m:
        m.setattr(os, "stat", _boom)  # os.makedirs looks at the hash directory first
        second.makedirs()
    assert os.path.isdir(second.taskpath)
    second.makedirs()  # made already: fine, as os.makedirs(exist_ok=True)
    third = Task(stage="map", taskid=3, group=[0, "h"])
    os.makedirs(os.path.dirname(third.taskpath), exist_ok=True)
    open(third.taskpath, "w").close()  # noqa: SIM115 - a file in the way
    with pytest.raises(FileExistsError):
        third.makedirs()


def _opener(url: str) -> Iterator[int]:
    return iter([1, 2, 3])


def test_a_single_replica_is_read_without_a_draw_or_a_failover_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import random

    with monkeypatch.context() as m:
        m.setattr(random, "choice", _boom)
        m.setattr(InputIter, "_failover", _boom)
        assert list(InputIter(["u://a"], open=_opener)) == [1, 2, 3]
        assert list(InputIter("u://a", open=_opener).iterate()) == [1, 2, 3]
    seen = set()
    for _ in range(50):  # several replicas: still a random one first
        it = InputIter(["u://a", "u://b"], open=_opener)
        next(it)
        seen.add(it.url)
    assert seen == {"u://a", "u://b"}


def test_a_scheme_imported_already_is_taken_from_sys_modules(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import disco.schemes.scheme_raw

    monkeypatch.setattr(schemes.importlib, "import_module", _boom)
    assert schemes.import_scheme("raw://x") is disco.schemes.scheme_raw
