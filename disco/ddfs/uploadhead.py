"""Reading and answering an HTTP/1.x request head on a blocking socket, for the upload
front (``disco.ddfs.uploadfront``): just what a blob ``PUT`` needs, and a verdict of
"someone else's" for anything unusual, which the aiohttp app then answers as before.
"""

from __future__ import annotations

import re
import socket
from email.utils import formatdate
from http import HTTPStatus
from urllib.parse import unquote

from disco.lazydataclass import lazy_dataclass

#: A head longer than this is not ours (aiohttp answers it: 400 or 431).
MAX_HEAD = 64 * 1024
END = b"\r\n\r\n"
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # a method or header name (RFC 9110)
CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # never in a target or header value


@lazy_dataclass(frozen=True)  # not used by every run (a tiny job): made at first use
class Head:
    """A request head: method, decoded path (no query), version ``"1.0"``/``"1.1"``,
    headers with lower-case names (a repeated header keeps its first value, and makes
    ``repeated`` true)."""

    method: str
    path: str
    version: str
    headers: dict[str, str]
    repeated: bool = False


def read_head(sock: socket.socket) -> tuple[bytes, int]:
    """Receive until the end of the head: (every byte received, where the body starts,
    or ``-1`` if the connection closed first or the head is longer than ``MAX_HEAD``)."""
    data = b""
    while True:
        chunk = sock.recv(MAX_HEAD)
        if not chunk:
            return data, -1
        data += chunk
        # the end may straddle two pieces: look back 3 bytes
        end = data.find(END, max(0, len(data) - len(chunk) - 3))
        if end >= 0:
            return data, (end + len(END) if end + len(END) <= MAX_HEAD else -1)
        if len(data) > MAX_HEAD:
            return data, -1


def parse_head(raw: bytes) -> Head | None:
    """The head of ``raw`` (ending with the blank line), or ``None`` if it is anything
    but a plain, well-formed HTTP/1.0 or 1.1 request in ASCII with an origin-form
    target."""
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    lines = text[: -len(END)].split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.0", "HTTP/1.1"):
        return None
    method, target, version = parts
    if not TOKEN.fullmatch(method) or not target.startswith("/") or "#" in target:
        return None
    if CONTROL.search(target):
        return None
    headers: dict[str, str] = {}
    repeated = False
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not TOKEN.fullmatch(name) or CONTROL.search(value):
            return None  # folded or malformed
        key = name.lower()
        if key in headers:
            repeated = True
            continue
        headers[key] = value.strip(" \t")
    try:
        path = unquote(target.split("?", 1)[0], errors="strict")
    except UnicodeDecodeError:
        return None
    return Head(method, path, version[5:], headers, repeated)


def reply(
    sock: socket.socket,
    version: str,
    status: int,
    body: str,
    content_type: str = "text/plain",
) -> None:
    """Send a whole answer that closes the connection (ddfs.md 2.2: no keep-alive),
    with the headers aiohttp sends; a client already gone is ignored."""
    from aiohttp.http import SERVER_SOFTWARE

    data = body.encode("utf-8")
    head = (
        "HTTP/%s %d %s\r\n"
        "Content-Type: %s; charset=utf-8\r\n"
        "Content-Length: %d\r\n"
        "Date: %s\r\n"
        "Server: %s\r\n"
        "Connection: close\r\n\r\n"
    ) % (
        version,
        status,
        HTTPStatus(status).phrase,
        content_type,
        len(data),
        formatdate(usegmt=True),
        SERVER_SOFTWARE,
    )
    try:
        sock.sendall(head.encode("ascii") + data)
    except OSError:
        pass


def linger_close(sock: socket.socket, unread: int, limit: int = 1 << 20) -> None:
    """Close after an answer sent before the body was read: read (and drop) up to
    ``limit`` bytes of what the client still sends, so that the closing does not reset
    the connection under the answer before the client has read it."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(1.0)
        left = min(unread, limit)
        while left > 0:
            got = sock.recv(min(left, 65536))
            if not got:
                break
            left -= len(got)
    except OSError:
        pass
    finally:
        sock.close()
