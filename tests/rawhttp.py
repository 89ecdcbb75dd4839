"""One raw HTTP request, exactly as given: no quoting of the path, no added headers
(the path-escape, bad-input and fuzz tests send what a library would refuse to)."""

from __future__ import annotations

import http.client


def send_raw(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    host: str = "127.0.0.1",
) -> tuple[int, bytes]:
    """``(status, body)`` of ``method path`` sent to ``host:port`` as is."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.putheader("Content-Length", str(len(body or b"")))
        conn.endheaders(body or b"")
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()
