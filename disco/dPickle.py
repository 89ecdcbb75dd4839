"""Pickling of job objects with functions by value (library.md 15).

``cloudpickle`` pickles functions and classes of ``__main__`` (and lambdas, closures)
by value; importable ones (stdlib, ``disco.*``, installed or shipped modules) by
reference.  ``Pickler`` keeps the file names of by-value code (cloudpickle writes
``<dynamic-code>``), so tracebacks from the nodes name the user's file and line.
"""

from __future__ import annotations

import io
import pickle
import types
from collections import ChainMap
from typing import Any

import cloudpickle

_DYNAMIC = "<dynamic-code>"


def _code_reduce(code: types.CodeType) -> Any:
    reducer = cloudpickle.Pickler.dispatch_table[types.CodeType]
    cls, args = reducer(code)
    if _DYNAMIC in args:
        at = args.index(_DYNAMIC)
        args = (*args[:at], code.co_filename, *args[at + 1 :])
    return cls, args


class Pickler(cloudpickle.Pickler):
    """``cloudpickle.Pickler`` that keeps ``co_filename`` of the code it pickles by value."""

    dispatch_table = ChainMap({types.CodeType: _code_reduce}, cloudpickle.Pickler.dispatch_table)


def dumps(obj: Any, protocol: int | None = None) -> bytes:
    if protocol is None or protocol < 0:
        protocol = pickle.HIGHEST_PROTOCOL
    out = io.BytesIO()
    Pickler(out, protocol=protocol).dump(obj)
    return out.getvalue()


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def dump(obj: Any, file: Any, protocol: int | None = None) -> None:
    file.write(dumps(obj, protocol))


def load(file: Any) -> Any:
    return pickle.load(file)
