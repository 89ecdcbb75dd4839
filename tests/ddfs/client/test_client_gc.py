"""ddfs.md 5.7 / 8.2 through the client: GC keeps every freshly written, tagged blob."""

from __future__ import annotations

import json

from disco import comm
from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from tests.conftest import poll_for
from tests.ddfs.client.conftest import NODES, SETTINGS


def gc(master_url: str, what: str) -> str:
    return json.loads(comm.download("%s/ddfs/ctrl/%s" % (master_url, what)))


def test_gc_keeps_pushed_and_chunked_blobs(tmp_path) -> None:
    path = tmp_path / "small.txt"
    path.write_bytes(b"a small local file\n")
    settings = {**SETTINGS, "DDFS_GC_INITIAL_WAIT": "0", "DDFS_BLOB_REPLICAS": "2"}
    with EmbeddedMaster(root=tmp_path / "disco", nodes=NODES, settings=settings) as master:
        ddfs = DDFS(master.url)
        writers = [
            lambda t: ddfs.push(t, [str(path)]),
            lambda t: ddfs.chunk(t, [str(path)]),
            lambda t: ddfs.chunk(t, [str(path)], delayed=True),
            lambda t: ddfs.push(t, [str(path)], delayed=True),
            lambda t: ddfs.chunk(t, [str(path)], replicas=None),
            lambda t: ddfs.tag(t + "tag", ddfs.push(t + "src", [str(path)])[1]),
            lambda t: ddfs.tag(t + "tag", ddfs.chunk(t + "src", [str(path)])[1]),
        ]
        tags = []
        for i in range(14):
            tag = "disco:test:gc:%s%d" % ("shared" if i % 2 else "", i)
            writers[i % len(writers)](tag)
            tags.append(tag + "tag" if i % len(writers) >= 5 else tag)
        assert gc(master.url, "gc_start") in ("GC has started", "GC is waiting")
        poll_for(lambda: gc(master.url, "gc_status") == "", 60, "GC to finish")
        for tag in tags:
            blobs = list(ddfs.blobs(tag))
            assert len(blobs) == 1 and len(blobs[0]) >= 1, tag
            assert [len(f.read()) > 0 for f in ddfs.pull(tag)] == [True]
