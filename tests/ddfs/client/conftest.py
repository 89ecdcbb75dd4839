"""Fixtures of the DDFS client and CLI tests: a ``DDFS`` client on a real three-node
cluster (localhost, 127.0.0.2, 127.0.0.3, as ``cluster`` of tests/conftest.py) whose
delayed tag updates are flushed after 0.1 s instead of 1 s, to keep the tests fast."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator

import pytest

from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from tests.conftest import _assert_no_leaked_workers, child_pids

NODES = [("localhost", 2), ("127.0.0.2", 2), ("127.0.0.3", 2)]
SETTINGS = {"DDFS_DELAYED_FLUSH": "0.1"}


@pytest.fixture
def cluster(tmp_path) -> Iterator[EmbeddedMaster]:
    before = child_pids()
    with EmbeddedMaster(
        root=tmp_path / "disco", nodes=NODES, settings=SETTINGS, retry_delay=0.0
    ) as m:
        yield m
    _assert_no_leaked_workers(before)


@pytest.fixture
def ddfs(cluster) -> DDFS:
    return DDFS(cluster.url)


def make_tarball(path, members: dict[str, bytes]) -> str:
    """A tar archive at ``path`` holding ``members`` (name -> bytes); its path."""
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)
