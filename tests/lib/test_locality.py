"""One ``local_path`` for the whole library (issue 13): the worker's replica choice,
index and URL reads, the ``disco://``/``dir://``/``http`` schemes, OOB reads and the
input splitter all ask ``disco.locality.local_path``."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

import disco.worker
from disco import locality
from disco.schemes import scheme_disco
from disco.worker.classic import input_split


def node(tmp_path: Path, host: str = "n1") -> SimpleNamespace:
    return SimpleNamespace(
        host=host,
        disco_port=8989,
        disco_data=str(tmp_path / "data"),
        ddfs_data=str(tmp_path / "ddfs"),
    )


def test_one_function_under_every_name() -> None:
    assert disco.worker.local_path is locality.local_path
    assert scheme_disco.local_path is locality.local_path
    assert scheme_disco.active_task is locality.active_task
    assert input_split.local_path is locality.local_path  # local_file filters it


def test_what_is_local(tmp_path: Path) -> None:
    task = node(tmp_path)
    data = tmp_path / "data"
    assert locality.local_path("file:///tmp/x", task) == "/tmp/x"
    assert locality.local_path("/tmp/y") == "/tmp/y"
    assert locality.local_path(b"/tmp/z") == "/tmp/z"
    assert locality.local_path("raw://hello", task) is None
    assert locality.local_path("tmp/rel", task) is None
    # this node's host: local whether or not the file exists yet
    assert locality.local_path("disco://n1/disco/n1/J/x", task) == str(data / "n1/J/x")
    assert locality.local_path("dir://n1/ddfs/vol0/b", task) == str(tmp_path / "ddfs/vol0/b")
    assert locality.local_path("http://n1:8989/disco/a", task) == str(data / "a")
    assert locality.local_path("https://n1:8989/disco/a", task) == str(data / "a")
    assert locality.local_path("http://n1:80/disco/a", task) is None
    # another host: local only when its file is under this node's data directory
    assert locality.local_path("disco://n2/disco/n2/J/x", task) is None
    (data / "n2" / "J").mkdir(parents=True)
    (data / "n2" / "J" / "x").write_bytes(b"x")
    assert locality.local_path("disco://n2/disco/n2/J/x", task) == str(data / "n2/J/x")


def test_the_running_task_then_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disco.worker, "active_task", node(tmp_path))
    assert locality.local_path("disco://n1/disco/a") == str(tmp_path / "data" / "a")
    monkeypatch.setattr(disco.worker, "active_task", None)
    monkeypatch.setenv("DISCO_DATA", str(tmp_path / "settings"))
    monkeypatch.setenv("DISCO_PORT", "9999")
    assert locality.local_path("disco://n1/disco/a") is None  # no host, no file
    (tmp_path / "settings").mkdir()
    (tmp_path / "settings" / "a").write_bytes(b"a")
    assert locality.local_path("disco://n1/disco/a") == str(tmp_path / "settings" / "a")
    assert locality.local_path("http://n1:9999/disco/a") == str(tmp_path / "settings" / "a")
