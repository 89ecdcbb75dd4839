"""``python -m disco.master``: run a master in the foreground until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from disco.settings import DiscoSettings, debug_level

logger = logging.getLogger("disco.master")


async def _serve(settings: DiscoSettings, host: str, port: int) -> None:
    from disco.node.zygote import prestart

    # The worker zygote imports the worker library while this process imports the master.
    zygote = await prestart(settings)  # None on a Dask cluster
    from disco.lazy_aiohttp import import_aiohttp_web

    # aiohttp's client (and its CA bundle) imported at first use, not at start
    import_aiohttp_web()
    from disco.master.server import start_master

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await start_master(
        settings, host=host, port=port, prestart_workers=True, zygote=zygote
    )
    try:
        await stop.wait()
    finally:
        logger.info("shutting down")
        await server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m disco.master", description=__doc__)
    parser.add_argument("--host", help="address to bind (default: DISCO_MASTER_HOST)")
    parser.add_argument("--port", type=int, help="port to bind (default: DISCO_PORT)")
    parser.add_argument("--pidfile", help="write the process id to this file")
    parser.add_argument("--debug", action="store_true", help="log at DEBUG level")
    args = parser.parse_args(argv)
    settings = DiscoSettings()
    debug = args.debug or debug_level(settings["DISCO_DEBUG"]) == logging.DEBUG
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    if debug:
        logger.debug("debug logging on (DISCO_DEBUG=%s)", settings["DISCO_DEBUG"])
    settings.ensuredirs()
    host = args.host or str(settings["DISCO_MASTER_HOST"])
    port = args.port if args.port is not None else int(settings["DISCO_PORT"])
    if args.pidfile:
        with open(args.pidfile, "w", encoding="utf-8") as f:
            f.write("%d\n" % os.getpid())
    try:
        asyncio.run(_serve(settings, host, port))
    except OSError as exc:  # cannot bind, no Dask scheduler at DISCO_DASK_SCHEDULER, ...
        logger.error("cannot start the master: %s", exc)
        return 1
    finally:
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
