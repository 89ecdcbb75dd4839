"""DDFS settings of the master, typed once at startup (ddfs.md 6).

``DDFSConfig.from_settings`` is the only place the DDFS master and GC read settings.  A
setting counts as set only when it is present and non-empty, as in 0.5.  The fixed
constants of 0.5 that tests need to shorten (GC interval, orphan and quarantine expiries,
the delayed-update flush) are settings here, in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from disco.error import DiscoError
from disco.settings import DiscoSettings

GIB_KB = 1024 * 1024


def _flag(value: Any) -> bool:
    return value not in (None, "", False, "False", "false", "0", 0)


def _number(settings: DiscoSettings, key: str, default: float) -> float:
    value = settings.get(key, "")
    if value in (None, ""):
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise DiscoError("Setting %s must be a number, not %r" % (key, value)) from None


@dataclass(frozen=True)
class DDFSConfig:
    """Typed DDFS settings (defaults are 0.5's)."""

    put_port: int = 8990
    blob_replicas: int = 1  # Kb
    tag_replicas: int = 1  # Kt
    tag_min_replicas: int = 1  # Kmin
    gc_initial_wait: float = 5 * 60.0  # seconds (DDFS_GC_INITIAL_WAIT is in minutes)
    gc_interval: float = 24 * 60 * 60.0
    orphan_blob_expires: float = 5 * 24 * 60 * 60.0
    orphan_tag_expires: float = 5 * 24 * 60 * 60.0
    deleted_tag_expires: float = 30 * 24 * 60 * 60.0
    partial_expires: float = 24 * 60 * 60.0
    delayed_flush: float = 1.0
    gc_progress_timeout: float = 30 * 60.0  # a GC run without progress is aborted (5.1)
    gc_delete_pause: float = 0.1  # seconds GC waits after each deletion (5.3)
    paranoid_delete: bool = False
    space_aware: bool = False
    absolute_space: bool = False
    balance_threshold: float = 0.1
    min_free_kb: int = GIB_KB  # preferred writers have more than 1 GiB free (5.6)
    nodes_over_http: bool = False  # local backend: NodeStores over HTTP (DDFS_NODES_OVER_HTTP)

    @classmethod
    def from_settings(cls, settings: DiscoSettings, put_port: int) -> DDFSConfig:
        d = cls()

        def count(key: str, default: int) -> int:
            value = int(_number(settings, key, default))
            if value < 0:
                raise DiscoError("Setting %s must not be negative" % key)
            return value

        return cls(
            put_port=put_port,
            blob_replicas=count("DDFS_BLOB_REPLICAS", d.blob_replicas),
            tag_replicas=max(1, count("DDFS_TAG_REPLICAS", d.tag_replicas)),
            tag_min_replicas=max(1, count("DDFS_TAG_MIN_REPLICAS", d.tag_min_replicas)),
            gc_initial_wait=60.0 * _number(settings, "DDFS_GC_INITIAL_WAIT", 5.0),
            gc_interval=_number(settings, "DDFS_GC_INTERVAL", d.gc_interval),
            orphan_blob_expires=_number(
                settings, "DDFS_ORPHAN_BLOB_EXPIRES", d.orphan_blob_expires
            ),
            orphan_tag_expires=_number(settings, "DDFS_ORPHAN_TAG_EXPIRES", d.orphan_tag_expires),
            deleted_tag_expires=_number(
                settings, "DDFS_DELETED_TAG_EXPIRES", d.deleted_tag_expires
            ),
            partial_expires=_number(settings, "DDFS_PARTIAL_EXPIRES", d.partial_expires),
            delayed_flush=_number(settings, "DDFS_DELAYED_FLUSH", d.delayed_flush),
            gc_progress_timeout=_number(
                settings, "DDFS_GC_PROGRESS_TIMEOUT", d.gc_progress_timeout
            ),
            gc_delete_pause=_number(settings, "DDFS_GC_DELETE_PAUSE", d.gc_delete_pause),
            paranoid_delete=_flag(settings.get("DDFS_PARANOID_DELETE", "")),
            space_aware=_flag(settings.get("DDFS_SPACE_AWARE", "")),
            absolute_space=_flag(settings.get("DDFS_ABSOLUTE_SPACE", "")),
            balance_threshold=_number(settings, "DDFS_GC_BALANCE_THRESHOLD", d.balance_threshold),
            nodes_over_http=_flag(settings.get("DDFS_NODES_OVER_HTTP", "")),
        )
