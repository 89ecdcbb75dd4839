"""Fixtures of the node tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from disco.embedded import EmbeddedMaster
from tests.node.helpers import PackMaster


@pytest.fixture
def packs(tmp_path) -> Iterator[PackMaster]:
    """A real master serving the job packs the test writes to ``packs.path()``."""
    with EmbeddedMaster(root=tmp_path / "master", export_env=False) as master:
        yield PackMaster(master)
