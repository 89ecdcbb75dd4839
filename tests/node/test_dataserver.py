"""A node's data server on a real loopback socket (master-api.md 2.5, 2.8, 2.9)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
import pytest
from aiohttp import web

from disco.node.dataserver import create_data_app, safe_path, strip_proxy

pytestmark = pytest.mark.timeout(30)

CONTENT = b"0123456789abcdefghij"
REL = "node1/82/Job@1:2:3/ab/out-0"


@pytest.fixture
def roots(tmp_path):
    data, ddfs = tmp_path / "data", tmp_path / "ddfs"
    os.makedirs(data / "node1/82/Job@1:2:3/ab")
    (data / REL).write_bytes(CONTENT)
    (data / (REL + ".gz")).write_bytes(b"not the file")
    os.makedirs(ddfs / "vol0/blob/3a")
    (ddfs / "vol0/blob/3a/b$1-2-3").write_bytes(b"blob")
    (tmp_path / "secret").write_bytes(b"secret")
    os.symlink(tmp_path / "secret", data / "node1/escape")
    os.symlink(data / REL, data / "node1/inside")
    return str(data), str(ddfs)


def serve(roots, client):
    """Run ``client(base_url)`` against a data server on 127.0.0.1, free port."""

    async def main():
        runner = web.AppRunner(create_data_app(*roots))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            return await client("http://127.0.0.1:%d" % port, port)
        finally:
            await runner.cleanup()

    return asyncio.run(main())


async def fetch(url, method="GET", headers=None):
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.request(method, url, headers=headers) as resp:
            return resp.status, resp.headers, await resp.read()


async def raw_get(port, target):
    """A request with an unnormalised path, written by hand."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target.encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(data.split(b" ", 2)[1]), data


def test_get_file_range_head_and_304(roots):
    async def client(base, port):
        status, headers, body = await fetch(base + "/disco/" + REL)
        assert (status, body) == (200, CONTENT)
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Connection"] == "close"
        last_modified = headers["Last-Modified"]

        status, headers, body = await fetch(base + "/disco/" + REL, headers={"Range": "bytes=2-5"})
        assert (status, body) == (206, b"2345")
        assert headers["Content-Range"] == "bytes 2-5/20"
        status, _, body = await fetch(base + "/disco/" + REL, headers={"Range": "bytes=15-"})
        assert (status, body) == (206, b"fghij")

        status, headers, body = await fetch(base + "/disco/" + REL, method="HEAD")
        assert (status, body) == (200, b"")
        assert headers["Content-Length"] == "20"

        status, _, body = await fetch(
            base + "/disco/" + REL, headers={"If-Modified-Since": last_modified}
        )
        assert (status, body) == (304, b"")

        # a "<file>.gz" sibling is never substituted for the file
        status, headers, body = await fetch(
            base + "/disco/" + REL, headers={"Accept-Encoding": "gzip, br"}
        )
        assert (status, body) == (200, CONTENT) and "Content-Encoding" not in headers

        status, _, body = await fetch(base + "/ddfs/vol0/blob/3a/b$1-2-3")
        assert (status, body) == (200, b"blob")

    serve(roots, client)


def test_errors(roots):
    async def client(base, port):
        status, headers, body = await fetch(base + "/disco/node1/missing")
        assert (status, body) == (404, b"Not found.")
        assert headers["Content-Type"].startswith("text/plain")
        status, _, _ = await fetch(base + "/disco/node1/82")
        assert status == 403
        for method in ("POST", "PUT", "DELETE"):
            status, _, body = await fetch(base + "/disco/" + REL, method=method)
            assert (status, body) == (501, b"Method not supported")
        for path in ("/", "/other/x", "/disco", "/disco/", "/ddfs/"):
            status, _, _ = await fetch(base + path)
            assert status in (403, 404), path
        # symlinks: escaping the root is refused, staying inside is fine
        assert (await fetch(base + "/disco/node1/escape"))[0] == 404
        assert (await fetch(base + "/disco/node1/inside"))[::2] == (200, CONTENT)

    serve(roots, client)


def test_traversal_is_refused(roots):
    async def client(base, port):
        for target in (
            "/disco/../secret",
            "/disco/node1/../../secret",
            "/disco/%2e%2e/secret",
            "/disco/node1/%2e%2e/%2e%2e/secret",
            "/disco/..%2fsecret",
            "/ddfs/../data/" + REL,
            "/disco//etc/passwd",
            "/proxy/n/GET/disco/../secret",
        ):
            status, data = await raw_get(port, target)
            assert status == 404, (target, data)
            assert b"secret" not in data.split(b"\r\n\r\n", 1)[1]

    serve(roots, client)


def test_proxy_prefix_is_stripped(roots):
    async def client(base, port):
        status, _, body = await fetch(base + "/proxy/node1/GET/disco/" + REL)
        assert (status, body) == (200, CONTENT)
        status, _, body = await fetch(base + "/proxy/node1/GET/ddfs/vol0/blob/3a/b$1-2-3")
        assert (status, body) == (200, b"blob")
        status, _, _ = await fetch(base + "/proxy/node1/PUT/disco/" + REL, method="PUT")
        assert status == 501

    serve(roots, client)


def test_safe_path_and_strip_proxy(roots):
    data, _ = roots
    real = os.path.realpath(data)
    assert safe_path(data, REL) == os.path.join(real, REL)
    assert safe_path(data, "node1/./82") == os.path.join(real, "node1/82")
    for bad in ("", "/etc/passwd", "../x", "a/../../x", "a/..", "a\0b", "node1/escape"):
        assert safe_path(data, bad) is None, bad
    assert strip_proxy("/proxy/n/GET/disco/x") == "/disco/x"
    assert strip_proxy("/proxy/n/GET") == "/"
    assert strip_proxy("/disco/x") == "/disco/x"


def test_too_many_downloads_is_503_and_the_slot_is_freed(tmp_path):
    """2.5: beyond the download limit the answer is 503; a finished download frees it."""
    data, ddfs = tmp_path / "data", tmp_path / "ddfs"
    os.makedirs(data / "n")
    big = data / "n" / "big"
    big.write_bytes(b"x" * (64 << 20))  # larger than the socket buffers: the send stalls
    (data / "n" / "small").write_bytes(b"small")

    async def main():
        runner = web.AppRunner(create_data_app(str(data), str(ddfs), max_downloads=1))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = "http://127.0.0.1:%d" % port
        try:
            # A client that asks for the big file and does not read it holds the slot.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /disco/n/big HTTP/1.1\r\nHost: x\r\n\r\n")
            await writer.drain()
            await reader.readuntil(b"\r\n\r\n")
            status, _, body = await fetch(base + "/disco/n/small")
            assert (status, body) == (
                503,
                b"Maximum number of downloaders reached. Try again later",
            )
            writer.close()  # the stalled download ends ...
            for _ in range(100):
                status, _, body = await fetch(base + "/disco/n/small")
                if status == 200:
                    break
                await asyncio.sleep(0.05)
            assert (status, body) == (200, b"small")  # ... and its slot is free again
        finally:
            await runner.cleanup()

    asyncio.run(main())
