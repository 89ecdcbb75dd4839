"""Writing a blob from a stream of chunks, and copying one from another node (ddfs.md 2.4.2, 5.5).

``store_chunks`` is the one place a node turns bytes arriving over the network into a
blob: a staging file on the emptiest volume, disk writes overlapping the receiving, the
rename into place only when every byte arrived.  The upload server feeds it a request body;
``fetch_blob`` (re-replication) feeds it the body of a ``GET`` of the blob from the data
server of the node holding a copy.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping

import aiohttp

from disco.ddfs.names import parse_ddfs_url
from disco.ddfs.node import DDFSNode

MAX_BLOB = 1 << 40  # 1 TiB
WRITE_BATCH = 1024 * 1024


def upload_error_reason(exc: BaseException) -> str:
    """The text of an upload error without the file names an ``OSError`` carries."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) if isinstance(exc, OSError) else type(exc).__name__


class BadUpload(Exception):
    """The sender's fault: a body cut off or too large (answered 400, not 500)."""


class SourceUnavailable(OSError):
    """The node holding the copy to replicate did not hand it over."""


async def store_chunks(
    node: DDFSNode, oid: str, chunks: AsyncIterator[bytes], size: int | None
) -> str:
    """Write ``chunks`` as blob ``oid`` (``size``: the announced length, or ``None``); the
    canonical URL.  Raises ``InvalidName``, ``FileExistsError``, ``NoSpace``,
    ``BadUpload`` or ``OSError``; nothing stays behind on failure."""
    upload = await asyncio.to_thread(node.begin_blob, oid, size or 0)
    writing: asyncio.Future[None] | None = None  # the disk write runs while we receive
    try:
        pending: list[bytes] = []
        buffered = received = 0
        async for chunk in chunks:
            pending.append(chunk)
            buffered += len(chunk)
            received += len(chunk)
            if received > MAX_BLOB:
                raise BadUpload("blob larger than 1 TiB")
            if buffered >= WRITE_BATCH:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(upload.write, b"".join(pending)))
                pending, buffered = [], 0
        if writing is not None:
            await writing
        if pending:
            await asyncio.to_thread(upload.write, b"".join(pending))
        if size is not None and upload.size != size:
            raise BadUpload("body cut off")
        return await asyncio.to_thread(upload.commit)
    except BaseException:
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)  # before closing the file
        await asyncio.to_thread(upload.abort)
        raise


def source_http_url(url: str, disco_port: int) -> str:
    """``http://HOST:DISCO_PORT/ddfs/...`` of a canonical ``disco://`` blob URL."""
    parsed = parse_ddfs_url(url)
    if parsed is None:
        raise ValueError("not a DDFS URL")
    return "http://%s:%d/ddfs/%s" % (parsed.host, disco_port, parsed.relpath)


async def fetch_blob(
    node: DDFSNode,
    oid: str,
    url: str,
    headers: Mapping[str, str],
    session: aiohttp.ClientSession | None = None,
) -> str:
    """Copy blob ``oid`` into ``node`` from ``url`` (an ``http://`` URL of a node's data
    server); the canonical URL of the new copy.  Raises ``SourceUnavailable`` when the
    source does not answer 200 with the whole body, and what ``store_chunks`` raises."""
    own = session is None
    if session is None:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=120)
        session = aiohttp.ClientSession(timeout=timeout)
    try:
        try:
            async with session.get(url, headers=dict(headers)) as response:
                if response.status != 200:
                    raise SourceUnavailable("source answered %d" % response.status)

                async def chunks() -> AsyncIterator[bytes]:
                    try:
                        async for chunk in response.content.iter_chunked(WRITE_BATCH):
                            yield chunk
                    except (TimeoutError, aiohttp.ClientError) as exc:
                        raise SourceUnavailable("source cut off: %s" % exc) from None

                return await store_chunks(node, oid, chunks(), response.content_length)
        except BadUpload as exc:
            raise SourceUnavailable("source cut off: %s" % exc) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SourceUnavailable("source unreachable: %s" % type(exc).__name__) from None
    finally:
        if own:
            await session.close()
