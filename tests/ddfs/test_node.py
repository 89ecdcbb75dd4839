"""A node's DDFS files and upload server on their own (ddfs.md 1.3, 1.4, 1.7, 2.2, 2.4.2)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from aiohttp import web

from disco.ddfs.blobserver import create_put_app
from disco.ddfs.gate import TransferLimits
from disco.ddfs.names import Timestamp
from disco.ddfs.node import DDFSNode, NoSpace


def test_volumes_are_created_and_listed(tmp_path) -> None:
    node = DDFSNode("n1", str(tmp_path / "root"))
    assert node.volumes() == ["vol0"]
    for kind in ("blob", "tag"):
        assert (tmp_path / "root" / "vol0" / kind).is_dir()
    os.makedirs(tmp_path / "root" / "vol1")
    os.makedirs(tmp_path / "root" / "other")
    assert node.volumes() == ["vol0", "vol1"]
    assert (tmp_path / "root" / "vol1" / "tag").is_dir()
    free, used = node.disk_usage()
    assert free > 0 and used > 0


def test_blob_upload_commit_and_abort(tmp_path) -> None:
    node = DDFSNode("n1", str(tmp_path))
    upload = node.begin_blob("b$1-2-3")
    upload.write(b"abc")
    url = upload.commit()
    assert url.startswith("disco://n1/ddfs/vol0/blob/") and url.endswith("/b$1-2-3")
    assert node.find_blob("b$1-2-3") == "vol0"
    with pytest.raises(FileExistsError):
        node.begin_blob("b$1-2-3")
    broken = node.begin_blob("c$1-2-3")
    broken.write(b"half")
    broken.abort()
    assert not os.path.exists(broken.staging) and node.find_blob("c$1-2-3") is None
    node.reserve_kb = 1 << 60
    with pytest.raises(NoSpace):
        node.begin_blob("d$1-2-3")


def test_tag_index_rebuilt_from_disk(tmp_path) -> None:
    node = DDFSNode("n1", str(tmp_path))
    for micro in (1, 3, 2):
        staging = node.write_tag("t", Timestamp(1, 2, micro), b"{}")
        node.commit_tag(staging)
    node.write_tag("t", Timestamp(1, 2, 9), b"{}")  # never committed
    assert node.tag_version("t") == (Timestamp(1, 2, 3), "vol0")
    again = DDFSNode("n1", str(tmp_path))  # a restarted node scans its volumes
    assert again.tag_version("t") == (Timestamp(1, 2, 3), "vol0")
    assert again.tag_names() == ["t"]
    staging = node.write_tag("t", Timestamp(1, 2, 3), b"{}")
    with pytest.raises(FileExistsError):  # a committed version is never overwritten
        node.commit_tag(staging)
    assert not os.path.exists(staging)


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def test_busy_node_answers_503(tmp_path) -> None:
    async def scenario() -> None:
        node = DDFSNode("n1", str(tmp_path))
        runner, port = await _serve(create_put_app(node, TransferLimits(1, 0, 5.0)))
        try:
            # a slow upload holds the only slot
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"PUT /ddfs/slow$1-2-3 HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc"
            )
            await writer.drain()
            await asyncio.sleep(0.2)
            async with aiohttp.ClientSession() as session:
                url = "http://127.0.0.1:%d/ddfs/fast$1-2-3" % port
                async with session.put(url, data=b"x") as resp:
                    assert resp.status == 503
                    assert await resp.text() == (
                        "Maximum number of uploaders reached. Try again later"
                    )
                writer.write(b"defghij")  # the slow one completes
                await writer.drain()
                head = await reader.read(100)
                assert head.startswith(b"HTTP/1.1 201")
                writer.close()
                async with session.put(url + "?", data=b"x") as resp:
                    assert resp.status == 201  # the slot is free again
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_download_gate(tmp_path) -> None:
    from disco.ddfs.gate import TransferGate
    from disco.node.dataserver import create_data_app

    os.makedirs(tmp_path / "vol0")
    (tmp_path / "vol0" / "f").write_bytes(b"data")

    async def fetch(gate: TransferGate) -> tuple[int, str]:
        runner, port = await _serve(create_data_app(str(tmp_path), str(tmp_path), ddfs_gate=gate))
        try:
            async with aiohttp.ClientSession() as session:
                async with session.get("http://127.0.0.1:%d/ddfs/vol0/f" % port) as resp:
                    return resp.status, await resp.text()
        finally:
            await runner.cleanup()

    async def scenario() -> None:
        assert await fetch(TransferGate(TransferLimits(1, 0, 1.0))) == (200, "data")
        full = TransferGate(TransferLimits(1, 0, 1.0))
        await full.enter()  # someone holds the only slot
        assert await fetch(full) == (503, "Maximum number of downloaders reached. Try again later")
        slow = TransferGate(TransferLimits(1, 5, 0.1))
        await slow.enter()
        assert await fetch(slow) == (403, "Disco node is busy")

    asyncio.run(scenario())
