"""The deflate of the internal record format's hunks (library.md 16.1), fast when it can be.

A hunk's payload is a standard zlib stream (RFC 1950) and its header holds the CRC-32 of
the uncompressed payload.  Any zlib reader reads what any zlib writer wrote, so the
implementation is free: with the ``isal`` package (Intel's ISA-L, a wheel on PyPI)
``compress`` is about 5 times and ``decompress`` 2 times as fast as the standard
library's ``zlib`` for records of the sort benchmark, at the same compression ratio as
zlib level 2 (docs/decisions.md, "Record formats").  Without ``isal`` (or with
``DISCO_DEFLATE=zlib`` in the environment) the standard library's ``zlib`` is used,
and hunks are byte for byte those of 0.5's writer.

* ``compress(data, level)``: a zlib stream of ``data``; ``level`` is zlib's (1-9, -1 for
  the default), mapped onto ISA-L's levels 1 (for 1-2), 2 (3-6, -1) and 3 (7-9);
* ``decompress(data)``: what ``zlib.decompress(data)`` returns, or ``zlib.error`` with
  zlib's own message: a stream the fast decoder refuses is decoded again by ``zlib``;
* ``crc32(data)``: ``zlib.crc32(data)`` (unsigned).
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Callable
from typing import Any

#: The implementation in use: ``"isal"`` or ``"zlib"``.
IMPLEMENTATION = "zlib"

_ISAL_LEVEL = {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3, 9: 3, -1: 2}

crc32: Callable[[Any], int] = zlib.crc32


def _zlib_compress(data: Any, level: int = 2) -> bytes:
    return zlib.compress(data, level)


compress: Callable[..., bytes] = _zlib_compress
decompress: Callable[[Any], bytes] = zlib.decompress


def use(name: str) -> str:
    """Switch the module to ``"isal"`` (when importable) or ``"zlib"``; the one in use."""
    global IMPLEMENTATION, compress, decompress, crc32
    isal_zlib = None
    if name == "isal":
        try:
            from isal import isal_zlib
        except ImportError:
            isal_zlib = None
    if isal_zlib is None:
        IMPLEMENTATION, compress, decompress, crc32 = (
            "zlib",
            _zlib_compress,
            zlib.decompress,
            zlib.crc32,
        )
        return IMPLEMENTATION
    fast_compress, fast_decompress, isal_error = (
        isal_zlib.compress,
        isal_zlib.decompress,
        isal_zlib.error,
    )
    levels = _ISAL_LEVEL

    def isal_compress(data: Any, level: int = 2) -> bytes:
        return fast_compress(data, levels.get(level, 2))

    def isal_decompress(data: Any) -> bytes:
        try:
            return fast_decompress(data)
        except isal_error:
            # zlib's verdict and message (and zlib's result, should the two ever disagree)
            return zlib.decompress(data)

    IMPLEMENTATION = "isal"
    compress, decompress, crc32 = isal_compress, isal_decompress, isal_zlib.crc32
    return IMPLEMENTATION


use(os.environ.get("DISCO_DEFLATE", "isal"))
