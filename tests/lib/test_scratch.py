"""``disco.scratch``: which paths are scratch, for the node and for a task."""

from __future__ import annotations

import os

from disco import scratch


def test_holds_add_remove(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    assert scratch.holds(root / "data" / "x") is None
    scratch.add(root)
    try:
        assert scratch.holds(root / "data" / "x") is not None
        assert scratch.holds(root) is not None
        assert scratch.holds(str(root) + "-other/x") is None
        assert scratch.holds(tmp_path) is None
    finally:
        scratch.remove(root)
    assert scratch.holds(root / "data" / "x") is None


def test_worker_env_sets_or_drops_the_variable(tmp_path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    inherited = {"PATH": "/bin", scratch.ENV: "/elsewhere"}
    assert scratch.worker_env(dict(inherited), str(root / "home")) == {"PATH": "/bin"}
    scratch.add(root)
    try:
        env = scratch.worker_env(dict(inherited), str(root / "home"))
        assert env[scratch.ENV] in {str(root), os.path.realpath(root)}
    finally:
        scratch.remove(root)


def test_synced_in_a_task(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(scratch.ENV, raising=False)
    assert scratch.synced(tmp_path / "out")
    monkeypatch.setenv(scratch.ENV, str(tmp_path / "root"))
    assert not scratch.synced(tmp_path / "root" / "home" / "out")
    assert scratch.synced(tmp_path / "rootless" / "out")
    monkeypatch.chdir(tmp_path / "..")
    assert scratch.synced("out")
