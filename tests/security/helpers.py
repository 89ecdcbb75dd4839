"""Helpers of the security tests: raw HTTP (no Disco client code), the sockets a process
listens on, free ports, and an address of this machine that is not loopback."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from typing import Any

from disco.auth import HEADER

TOKEN = "s3cret-token"
WRONG = "s3cret-tokeN"


def http(
    method: str, url: str, body: Any = None, token: str | None = None, headers: Any = None
) -> tuple[int, bytes]:
    """One request with urllib; ``token`` goes in the auth header. (status, body); status
    0 when no server answers."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    req = urllib.request.Request(url, data=body, method=method)
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    if token is not None:
        req.add_header(HEADER, token)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except urllib.error.URLError as e:  # nothing answers
        return 0, str(e.reason).encode()


def _hex_addr(text: str) -> tuple[str, int]:
    addr, port = text.split(":")
    if len(addr) == 8:
        ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(addr)[::-1])
    else:  # tcp6: four little-endian 32-bit words
        raw = b"".join(bytes.fromhex(addr[i : i + 8])[::-1] for i in range(0, 32, 8))
        ip = socket.inet_ntop(socket.AF_INET6, raw)
    return ip, int(port, 16)


def listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket process ``pid`` listens on."""
    inodes = set()
    fd_dir = "/proc/%d/fd" % pid
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table), encoding="ascii") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                found.add(_hex_addr(fields[1]))
    return found


def outside_address() -> str | None:
    """An address of this machine that is not loopback (``None`` if it has none)."""
    for target in ("192.0.2.254", "10.255.255.254", "8.8.8.8"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect((target, 9))  # no packet is sent: this only picks a route
                address = str(s.getsockname()[0])
        except OSError:
            continue
        if not address.startswith("127."):
            return address
    return None


def refuses(host: str, port: int) -> bool:
    """Whether a TCP connection to ``host:port`` is refused."""
    try:
        with socket.create_connection((host, port), timeout=5):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return True
