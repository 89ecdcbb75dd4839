"""disco.lazy_ca: aiohttp imported with its default SSL contexts' CA bundle loaded at their
first use (issue 13, tiny job: about 40 ms of CPU at every master start).

Each check runs in a fresh interpreter (this test process may have imported aiohttp
already, and the import is what is measured)."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import textwrap
import threading

import pytest

from disco.lazy_ca import DeferredCAContext, import_deferring_ca
from tests.conftest import environ_without_disco, run_python, self_signed_cert

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.timeout(120)


def _run(script: str) -> list[str]:
    out = run_python("-c", textwrap.dedent(script), cwd=ROOT, env=environ_without_disco())
    return out.splitlines()


def test_aiohttp_default_contexts_load_the_ca_bundle_at_first_use_only() -> None:
    lines = _run(
        """
        import ssl, sys
        from disco.lazy_ca import DeferredCAContext, import_deferring_ca
        import_deferring_ca("aiohttp.web")
        from aiohttp import connector
        contexts = [connector._SSL_CONTEXT_VERIFIED, connector._SSL_CONTEXT_UNVERIFIED]
        print("deferred", [type(c) is DeferredCAContext and c.ca_pending for c in contexts])
        print("is SSLContext", all(isinstance(c, ssl.SSLContext) for c in contexts))
        # the standard class is untouched once the import is over
        print("restored", "set_default_verify_paths" not in vars(ssl.SSLContext))
        eager = ssl.create_default_context()
        print("same CA store", contexts[0].cert_store_stats() == eager.cert_store_stats())
        print("same CA certs", contexts[0].get_ca_certs() == eager.get_ca_certs())
        print("loaded", [c.ca_pending for c in contexts])
        print("verifies", contexts[0].verify_mode == ssl.CERT_REQUIRED and contexts[0].check_hostname)
        """
    )
    assert lines == [
        "deferred [True, True]",
        "is SSLContext True",
        "restored True",
        "same CA store True",
        "same CA certs True",
        "loaded [False, True]",
        "verifies True",
    ]


def test_a_plain_import_of_aiohttp_keeps_the_standard_contexts() -> None:
    """Without ``import_deferring_ca`` nothing changes (the user's own aiohttp)."""
    lines = _run(
        """
        import ssl
        import disco.lazy_ca
        from aiohttp import connector
        print(type(connector._SSL_CONTEXT_VERIFIED) is ssl.SSLContext)
        """
    )
    assert lines == ["True"]


def test_wrapping_a_socket_loads_the_deferred_certificates() -> None:
    """A connection made with a deferred context (``wrap_socket``, ``wrap_bio``: asyncio
    and aiohttp) has the default CA certificates loaded before its handshake."""
    import_deferring_ca("aiohttp.web")  # no-op if imported; the class itself is tested
    eager = ssl.create_default_context()
    for wrap in ("socket", "bio"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.__class__ = DeferredCAContext
        ctx.ca_pending = True
        if wrap == "socket":
            a, b = socket.socketpair()
            with a, b:
                ctx.wrap_socket(a, server_hostname="localhost", do_handshake_on_connect=False)
        else:
            ctx.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
        assert not ctx.ca_pending
        assert ctx.cert_store_stats() == eager.cert_store_stats()


def test_first_use_from_several_threads_loads_once_and_completely() -> None:
    eager = ssl.create_default_context().cert_store_stats()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.__class__ = DeferredCAContext
    ctx.ca_pending = True
    seen: list[dict] = []
    threads = [
        threading.Thread(target=lambda: seen.append(ctx.cert_store_stats())) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [eager] * 4  # no thread saw a half-loaded (empty) store


_HTTPS_GET = """
import asyncio, http.server, ssl, sys, threading
from disco.lazy_ca import import_deferring_ca
import_deferring_ca("aiohttp.web")
import aiohttp
from aiohttp import connector

class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "5"); self.end_headers()
        self.wfile.write(b"hello")
    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
tls.load_cert_chain(CERT, KEY)
server.socket = tls.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("pending before", connector._SSL_CONTEXT_VERIFIED.ca_pending)

async def get():
    url = "https://localhost:%d/" % server.server_address[1]
    async with aiohttp.ClientSession() as session:  # default ssl=True: the verified context
        try:
            async with session.get(url) as r:
                return (await r.text())
        except aiohttp.ClientConnectorCertificateError:
            return "certificate refused"

print(asyncio.run(get()))
print("pending after", connector._SSL_CONTEXT_VERIFIED.ca_pending)
"""


@pytest.mark.parametrize("trusted", [True, False])
def test_aiohttp_https_through_the_deferred_default_context(tmp_path, trusted) -> None:
    """aiohttp's default (verified) context, deferred, verifies an https server against
    the default CA bundle loaded at the connection: trusted (``SSL_CERT_FILE`` names the
    server's certificate) it connects, untrusted it refuses, like the eager context."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command")
    cert, key = self_signed_cert(tmp_path)
    other, _ = self_signed_cert(tmp_path / "other") if not trusted else (cert, key)
    script = _HTTPS_GET.replace("CERT", repr(cert)).replace("KEY", repr(key))
    env = environ_without_disco(
        SSL_CERT_FILE=cert if trusted else other, SSL_CERT_DIR=str(tmp_path)
    )
    out = run_python("-c", script, cwd=ROOT, env=env, timeout=60).splitlines()
    assert out == [
        "pending before True",
        "hello" if trusted else "certificate refused",
        "pending after False",
    ]
