"""Serving a node's HTTP apps (data server, DDFS upload server) on the node's addresses:
used by the local backend (one per simulated host) and by ``NodeService``."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from disco.auth import AuthPolicy
from disco.ddfs.gate import TransferGate
from disco.ddfs.uploadfront import UPLOADS, UploadRunner
from disco.node.dataserver import ServedBytes, create_data_app


def node_data_app(
    disco_data: str, ddfs_data: str, auth: AuthPolicy, served: ServedBytes
) -> web.Application:
    """The data server of a node (master-api.md 2.9): its DDFS downloads pass a gate of
    their own (ddfs.md 2.2), the bytes it sends are added to ``served``."""
    return create_data_app(
        disco_data, ddfs_data, ddfs_gate=TransferGate(), auth=auth, served=served
    )


async def serve_first(
    app: web.Application,
    addresses: list[str],
    port: int,
    refused: Callable[[str, OSError], None] | None = None,
) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on ``port`` of the first of ``addresses`` that can be bound; its
    runner and that address.  ``refused(address, error)`` hears of each address that
    cannot be bound; if none can, the last ``OSError`` is raised (nothing is left
    running).  A DDFS upload app (``create_put_app``) is served through its upload
    front (``disco.ddfs.uploadfront``)."""
    uploads = app.get(UPLOADS)
    runner = (
        UploadRunner(app, uploads) if uploads is not None else web.AppRunner(app, access_log=None)
    )
    await runner.setup()
    error: OSError = OSError("no address to bind")
    for address in addresses:
        try:
            if isinstance(runner, UploadRunner):
                await runner.listen(address, port)
            else:
                await web.TCPSite(runner, address, port).start()
        except OSError as exc:
            error = exc
            if refused is not None:
                refused(address, exc)
            continue
        return runner, address
    await runner.cleanup()
    raise error
