"""An embedded master's own temporary root is scratch (``disco.scratch``): deleted when
the master stops, so its node does not sync the index files it writes there, and its
workers do not sync their outputs (``DISCO_SCRATCH`` in their environment).  A master
with a given root syncs both as before (master-api.md 8.7)."""

from __future__ import annotations

import os

import pytest

from disco import scratch
from disco.core import Job, result_iterator
from disco.embedded import EmbeddedMaster

pytestmark = pytest.mark.timeout(120)


def spy_fsync(log):
    """Record every ``os.fsync`` of this task in ``log`` (its outputs are closed after
    the job's function)."""
    import os

    real = os.fsync

    def spy(fd):
        with open(log, "a") as f:
            f.write("%d\n" % os.getpid())
        real(fd)

    os.fsync = spy


def spy_map(entry, params):
    import os

    spy_fsync(params["log"])
    yield entry, os.environ.get("DISCO_SCRATCH", "")


def spy_reduce(iter, out, params):
    import os

    spy_fsync(params["log"])
    for key, value in iter:
        out.add(key, value)
    out.add("reduce", os.environ.get("DISCO_SCRATCH", ""))


def _run(master: EmbeddedMaster, log: str, monkeypatch) -> tuple[dict, int]:
    """Run a 2-input map+reduce job; (its results, the fsyncs of this process meanwhile:
    the node's index files)."""
    synced: list[int] = []
    real = os.fsync

    def count(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", count)
    job = Job(master=master.url).run(
        input=["raw://a", "raw://b"], map=spy_map, reduce=spy_reduce, params={"log": log}
    )
    results = dict(result_iterator(job.wait(timeout=60)))
    monkeypatch.setattr(os, "fsync", real)
    return results, len(synced)


def test_an_embedded_master_syncs_nothing_in_its_temporary_root(tmp_path, monkeypatch) -> None:
    log = str(tmp_path / "fsyncs")
    with EmbeddedMaster() as m:
        root = m.root
        assert scratch.holds(os.path.join(root, "data")) is not None
        results, node_syncs = _run(m, log, monkeypatch)
    seen = set(results.values())
    assert len(seen) == 1 and seen.pop() in {root, os.path.realpath(root)}, results
    assert set(results) == {"a", "b", "reduce"}
    assert not os.path.exists(log), open(log).read()  # no worker synced an output
    assert node_syncs == 0  # nor the node an index file
    assert scratch.holds(root) is None  # forgotten at stop


def test_an_embedded_master_with_a_given_root_syncs(tmp_path, monkeypatch) -> None:
    log = str(tmp_path / "fsyncs")
    with EmbeddedMaster(tmp_path / "root") as m:
        assert scratch.holds(m.root) is None
        results, node_syncs = _run(m, log, monkeypatch)
    assert results == {"a": "", "b": "", "reduce": ""}
    with open(log) as f:
        assert len(f.read().split()) >= 3  # each map output and the reduce's
    assert node_syncs >= 3  # the index file of each task
