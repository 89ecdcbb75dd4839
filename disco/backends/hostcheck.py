"""Which configured hosts the local backend can run: this machine's own names only.

The local backend runs every node as processes on this machine.  A config table row
naming another machine (``node2.invalid``, ``n01:03``) cannot be simulated honestly: its
tasks would run here and its DDFS uploads would fail.  ``why_not_local`` says why a host
is refused: it is this machine when it is ``localhost``, this host's name, a loopback
address (127.0.0.0/8, ::1), an address this machine can bind, or a name resolving to one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

RESOLVE_TIMEOUT = 5.0  # seconds for one host name lookup

ADVICE = (
    "the local backend runs nodes on this machine only (localhost, 127.0.0.0/8, ::1, "
    "this host's own names and addresses); for other machines use a cluster backend"
)


def _is_own_address(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.is_loopback:
        return True
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((address, 0))  # only an address of this machine can be bound
        return True
    except OSError:
        return False


async def why_not_local(host: str) -> str | None:
    """``None`` when ``host`` is this machine, else the reason it cannot be a node."""
    if host in ("localhost", socket.gethostname()):
        return None
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        if _is_own_address(host):
            return None
        return "%s is not an address of this machine; %s" % (host, ADVICE)
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        return "cannot resolve host %s (%s); %s" % (host, reason, ADVICE)
    addresses = sorted({str(info[4][0]) for info in found})
    if any(_is_own_address(address) for address in addresses):
        return None
    return "%s is another machine (%s); %s" % (host, ", ".join(addresses), ADVICE)


async def refused_hosts(hosts: list[str]) -> dict[str, str]:
    """``{host: reason}`` for every host of ``hosts`` that is not this machine."""
    reasons = await asyncio.gather(*(why_not_local(host) for host in hosts))
    return {host: reason for host, reason in zip(hosts, reasons, strict=True) if reason}
