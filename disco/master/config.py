"""The master's configuration: one frozen ``MasterConfig`` built once at startup.

Owns the translation of ``DiscoSettings`` (strings from the environment, numbers from the
settings file, defaults) into typed values (master-api.md 11).  Nothing else in
``disco.master`` reads settings or the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal

from disco.auth import AuthPolicy
from disco.error import DiscoError
from disco.settings import DiscoSettings

VERSION = "0.5.4"

SchedulerPolicy = Literal["fair", "fifo"]


def _explicit(settings: DiscoSettings, key: str) -> bool:
    """Was ``key`` set by the caller, the environment or the settings file (not a default)?"""
    if dict.__contains__(settings, key) or key in settings._environ:
        return True
    try:
        return key in settings._file_settings()
    except DiscoError:
        return False


def _number(settings: DiscoSettings, key: str, cast: type) -> Any:
    value = settings[key]
    try:
        return cast(value)
    except (TypeError, ValueError):
        raise DiscoError("Setting %s must be a number, not %r" % (key, value))


@dataclass(frozen=True)
class MasterConfig:
    """Typed settings of one master (master-api.md 11.1, 11.3)."""

    host: str
    port: int
    master_url: str  # DISCO_MASTER, sent to workers in the TASK reply (8.4)
    name: str  # DISCO_NAME
    master_root: str  # DISCO_MASTER_ROOT: job packs and event logs (9.2)
    disco_data: str  # DISCO_DATA
    ddfs_data: str  # DDFS_DATA
    put_port: int  # DDFS_PUT_PORT
    config_file: str  # DISCO_MASTER_CONFIG (3.4)
    www_root: str  # DISCO_WWW_ROOT (2.6)
    scheduler: SchedulerPolicy = "fair"  # DISCO_SCHEDULER (10.5, 13.10)
    alpha: float = 0.001  # DISCO_SCHEDULER_ALPHA
    gc_after: float = 100 * 365 * 24 * 60 * 60  # DISCO_GC_AFTER, seconds (10.6)
    gc_interval: float = 12.0  # DATA_GC_INTERVAL, hours
    version: str = VERSION
    retry_delay: float | None = None  # None: min(n, 60) + random(0..30) s (10.3)
    max_failure_rate: int = 100  # default of the runtime setting (10.3)
    auth: AuthPolicy = AuthPolicy()  # DISCO_AUTH_TOKEN, DISCO_AUTH_READS (not in 0.5)

    @classmethod
    def from_settings(
        cls,
        settings: DiscoSettings,
        *,
        host: str,
        port: int,
        retry_delay: float | None = None,
    ) -> MasterConfig:
        """Build the config for a master bound on ``host:port`` (the real, bound port)."""
        if _explicit(settings, "DISCO_MASTER") and str(settings["DISCO_PORT"]) == str(port):
            master_url = str(settings["DISCO_MASTER"])
        else:
            master_url = "http://%s:%d" % (host, port)
        scheduler = str(settings["DISCO_SCHEDULER"]).strip().lower() or "fair"
        if scheduler not in ("fair", "fifo"):
            raise DiscoError("DISCO_SCHEDULER must be 'fair' or 'fifo', not %r" % scheduler)
        return cls(
            host=host,
            port=port,
            master_url=master_url,
            name=str(settings["DISCO_NAME"]),
            master_root=os.path.abspath(str(settings["DISCO_MASTER_ROOT"])),
            disco_data=os.path.abspath(str(settings["DISCO_DATA"])),
            ddfs_data=os.path.abspath(str(settings["DDFS_DATA"])),
            put_port=_number(settings, "DDFS_PUT_PORT", int),
            config_file=os.path.abspath(str(settings["DISCO_MASTER_CONFIG"])),
            www_root=os.path.abspath(str(settings["DISCO_WWW_ROOT"])),
            scheduler=scheduler,  # type: ignore[arg-type]
            alpha=_number(settings, "DISCO_SCHEDULER_ALPHA", float),
            gc_after=_number(settings, "DISCO_GC_AFTER", float),
            gc_interval=_number(settings, "DATA_GC_INTERVAL", float),
            retry_delay=retry_delay,
            auth=AuthPolicy.from_settings(settings),
        )
