"""The front door of a node's upload port (``DDFS_PUT_PORT``, ddfs.md 2.4.2): blob ``PUT``s
received on a thread of their own, straight from the socket into the disk buffer.

Why: the three local nodes of a master share its process, and receiving three big
uploads through one event loop (asyncio's reads, aiohttp's stream reader, hand-offs to
writer threads, a copy into the aligned buffer) cost 1.6-1.9 s of CPU per 1.5 GB under
one GIL (benchmarks/NOTES.md).  Here a thread per connection reads the request head; a
plain blob upload (``PUT /ddfs/NAME$TS`` with a ``Content-Length``, a valid id, the
cluster's token when one is set, ``Host`` in HTTP/1.1, no ``Transfer-Encoding``) is then received with
``socket.recv_into`` into the upload's aligned ``O_DIRECT`` buffer (one copy, the GIL
released while the kernel copies) and answered from that thread, with the statuses and
texts of ``disco.ddfs.blobserver``.  Every other connection (the DDFS master's
``/ddfs/node/`` calls, chunked uploads, bad names, missing tokens, odd heads) is handed,
with the bytes already read, to the node's aiohttp app, which answers it as before.

``UploadRunner`` is the ``web.AppRunner`` of that app: ``listen`` binds the port for
the front instead of a ``TCPSite``; ``cleanup`` stops both.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from disco.auth import HEADER, AuthPolicy
from disco.ddfs.blobstream import MAX_BLOB, BadUpload, upload_error_reason
from disco.ddfs.gate import UPLOADS_BUSY, TransferGate
from disco.ddfs.names import InvalidName, parse_object_id
from disco.ddfs.node import DDFSNode, NoSpace
from disco.ddfs.uploadhead import Head, linger_close, parse_head, read_head, reply
from disco.lazydataclass import lazy_dataclass
from disco.node.dataserver import strip_proxy
from disco.safenames import UnsafeName, check_object_id_length
from disco.servererrors import INTERNAL, SERVER_ERRORS

logger = logging.getLogger(__name__)

#: Seconds a new connection may take to send its request head (aiohttp's keep-alive
#: timeout), and a blob upload may stay silent in the middle of its body.
HEAD_TIMEOUT = 75.0
BODY_TIMEOUT = 120.0


@dataclass(frozen=True)
class Uploads:
    """What the front needs of a node's upload app: the node, the cluster's token
    policy, the node's upload gate (shared with the app's re-replication)."""

    node: DDFSNode
    auth: AuthPolicy
    gate: TransferGate


UPLOADS = web.AppKey("ddfs_uploads", Uploads)


@lazy_dataclass(frozen=True)  # not used by every run (a tiny job): made at first use
class BlobPut:
    """A request the front serves itself."""

    head: Head
    oid: str
    length: int

    @property
    def expects_continue(self) -> bool:
        return "expect" in self.head.headers


def blob_put(head: Head | None, auth: AuthPolicy) -> BlobPut | None:
    """The blob upload ``head`` asks for, if the front takes it (see the module doc);
    ``None`` hands it to the app."""
    if head is None or head.method != "PUT" or head.repeated:
        return None
    path = strip_proxy(head.path)
    if not path.startswith("/ddfs/"):
        return None
    oid = path[len("/ddfs/") :]
    try:
        parse_object_id(oid)
        check_object_id_length(oid)
    except (InvalidName, UnsafeName):
        return None
    headers = head.headers
    if "transfer-encoding" in headers or (head.version == "1.1" and "host" not in headers):
        return None  # chunked, or no Host in HTTP/1.1 (the app answers 400)
    expect = headers.get("expect")
    if expect is not None and expect.lower() != "100-continue":
        return None  # the app answers 417
    length = headers.get("content-length", "")
    if not (length.isascii() and length.isdigit()) or int(length) > MAX_BLOB:
        return None
    if auth.needs_token("PUT", path):
        token = headers.get(HEADER.lower())
        if token is None or not auth.accepts({HEADER: token}):
            return None  # the app answers 401
    return BlobPut(head, oid, int(length))


class _Replay(asyncio.Protocol):
    """Hands an accepted connection to aiohttp's request handler with the bytes the
    front already read from it."""

    def __init__(self, factory: Any, data: bytes) -> None:
        self._factory = factory
        self._data = data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        handler = self._factory()
        transport.set_protocol(handler)
        handler.connection_made(transport)
        if self._data:
            handler.data_received(self._data)


class UploadRunner(web.AppRunner):
    """The runner of a node's upload app (``create_put_app``), served by the front."""

    def __init__(self, app: web.Application, uploads: Uploads) -> None:
        super().__init__(app, access_log=None)
        self.uploads = uploads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self._closing = False
        self._listeners: list[socket.socket] = []
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()  # connections the front serves
        self._waits: set[concurrent.futures.Future[Any]] = set()

    # -- life ------------------------------------------------------------------------------
    async def listen(self, host: str, port: int) -> None:
        """Serve ``(host, port)`` (every address ``host`` resolves to, as aiohttp's
        ``TCPSite`` does); ``OSError`` if it cannot be bound (nothing is left bound)."""
        self._loop = asyncio.get_running_loop()
        infos = await self._loop.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        bound: list[socket.socket] = []
        try:
            for family, kind, proto, _name, address in dict.fromkeys(infos):
                sock = socket.socket(family, kind, proto)
                bound.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(128)
        except OSError:
            for sock in bound:
                sock.close()
            raise
        for sock in bound:
            self._listeners.append(sock)
            self._start(self._accept, sock, name="ddfs-upload-accept")

    async def cleanup(self) -> None:
        """Stop accepting, cut the uploads in progress (their staging files go), then
        stop the app."""
        with self._lock:
            self._closing = True
            listeners, self._listeners = self._listeners, []
            sockets, waits = list(self._sockets), list(self._waits)
        for sock in listeners + sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked in accept/recv
            except OSError:
                pass
        for wait in waits:
            wait.cancel()
        await asyncio.to_thread(self._join)
        for sock in listeners:
            sock.close()
        await super().cleanup()

    def _join(self) -> None:
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(30.0)

    def _start(self, target: Any, *args: Any, name: str) -> None:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(thread)

        thread = threading.Thread(target=run, name=name, daemon=True)
        with self._lock:
            if self._closing:
                if name == "ddfs-upload":
                    args[0].close()
                return
            if name == "ddfs-upload":  # cleanup shuts it down to wake its thread
                self._sockets.add(args[0])
            self._threads.add(thread)
        thread.start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _peer = listener.accept()
            except OSError as exc:
                if self._closing:
                    return
                logger.warning("DDFS upload port: accept failed: %s", exc)
                threading.Event().wait(0.1)  # out of descriptors: let some close
                continue
            self._start(self._serve, conn, name="ddfs-upload")

    # -- one connection --------------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(HEAD_TIMEOUT)
            try:
                data, body_at = read_head(conn)
            except OSError:
                data, body_at = b"", -1
            put = blob_put(parse_head(data[:body_at]), self.uploads.auth) if body_at > 0 else None
            if put is None:
                with self._lock:
                    self._sockets.discard(conn)
                if data and not self._closing:
                    self._hand_over(conn, data)
                else:
                    conn.close()
                return
            self._receive(conn, put, data[body_at:])
        except Exception:
            logger.exception("DDFS upload connection failed")
            conn.close()
        finally:
            with self._lock:
                self._sockets.discard(conn)

    def _hand_over(self, conn: socket.socket, data: bytes) -> None:
        """Let the app answer this connection, from the bytes it sent so far."""
        loop, server = self._loop, self.server
        if loop is None or server is None:
            conn.close()
            return
        conn.setblocking(False)

        async def adopt() -> None:
            await loop.connect_accepted_socket(lambda: _Replay(server, data), conn)

        try:
            future = asyncio.run_coroutine_threadsafe(adopt(), loop)
        except RuntimeError:  # the loop is closed
            conn.close()
            return
        future.add_done_callback(lambda f: f.cancelled() or f.exception() and conn.close())

    def _enter_gate(self) -> str:
        assert self._loop is not None
        try:
            wait = asyncio.run_coroutine_threadsafe(self.uploads.gate.enter(), self._loop)
        except RuntimeError:
            return "closed"
        with self._lock:
            self._waits.add(wait)
            if self._closing:
                wait.cancel()
        try:
            return str(wait.result())
        except (concurrent.futures.CancelledError, asyncio.CancelledError):
            return "closed"
        finally:
            with self._lock:
                self._waits.discard(wait)

    def _leave_gate(self) -> None:
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(self.uploads.gate.leave)
        except RuntimeError:
            pass  # the loop is closed: so is the gate

    def _receive(self, conn: socket.socket, put: BlobPut, first: bytes) -> None:
        first = first[: put.length]
        verdict = self._enter_gate()
        if verdict != "ok":
            if verdict != "closed":
                reply(conn, put.head.version, 503, UPLOADS_BUSY)
            linger_close(conn, put.length - len(first))
            return
        try:
            status, text, received = self._store(conn, put, first)
        finally:
            self._leave_gate()
        if status == 500:
            SERVER_ERRORS.record("PUT", put.head.path)
        if status == 201:
            reply(conn, put.head.version, 201, text, "application/json")
        else:
            reply(conn, put.head.version, status, text)
        linger_close(conn, put.length - received)

    def _store(self, conn: socket.socket, put: BlobPut, first: bytes) -> tuple[int, str, int]:
        """Receive the body as the blob: (status, answer text, body bytes read)."""
        node = self.uploads.node
        try:
            upload = node.begin_blob(put.oid, put.length)
        except FileExistsError:
            # 0.5: 500 "File exists (path: ...)"; docs/decisions.md (as blobserver)
            return 409, "File exists", 0
        except NoSpace as exc:
            return 500, "Write failed: %s" % exc, 0
        except OSError as exc:
            logger.warning("upload of %s to %s failed: %r", put.oid, node.host, exc)
            return 500, "Write failed: %s" % upload_error_reason(exc), 0

        def recv_into(buffer: memoryview) -> int:
            try:
                return conn.recv_into(buffer)
            except OSError:  # reset, timed out, or the server stopping
                raise BadUpload("body cut off") from None

        received = len(first)
        try:
            if put.expects_continue:
                try:
                    conn.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                except OSError:
                    raise BadUpload("body cut off") from None
            conn.settimeout(BODY_TIMEOUT)
            if first:
                upload.write(first)
            while received < put.length:
                n = upload.receive(recv_into, put.length - received)
                if n == 0:
                    raise BadUpload("body cut off")
                received += n
            url = upload.commit()
        except BadUpload as exc:
            upload.abort()
            return 400, "Write failed: %s" % exc, received
        except Exception as exc:  # disk errors: the staging file is gone
            upload.abort()
            if not isinstance(exc, OSError):
                logger.exception("upload of %s to %s failed", put.oid, node.host)
                return 500, INTERNAL, received
            logger.warning("upload of %s to %s failed: %r", put.oid, node.host, exc)
            return 500, "Write failed: %s" % upload_error_reason(exc), received
        return 201, json.dumps(url), received
