"""Pickling of job objects with functions by value (library.md 15).

``cloudpickle`` pickles functions and classes of ``__main__`` (and lambdas, closures)
by value; importable ones (stdlib, ``disco.*``, installed or shipped modules) by
reference.  ``Pickler`` keeps the file names of by-value code (cloudpickle writes
``<dynamic-code>``), so tracebacks from the nodes name the user's file and line, and
refuses open files, which cloudpickle would copy whole when opened for reading.
"""

from __future__ import annotations

import functools
import io
import marshal
import os
import pickle
import sys
import sysconfig
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


def _file_reduce(file: io.TextIOWrapper) -> Any:
    if file in (sys.stdin, sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        return cloudpickle.Pickler.dispatch_table[io.TextIOWrapper](file)
    raise pickle.PicklingError(
        "an open file cannot be sent to the nodes (%r); pass its path instead" % file.name
    )


class Pickler(cloudpickle.Pickler):
    """``cloudpickle.Pickler`` that keeps ``co_filename`` of the code it pickles by value,
    and refuses open files (cloudpickle would copy a file opened for reading whole)."""

    dispatch_table = ChainMap(
        {types.CodeType: _code_reduce, io.TextIOWrapper: _file_reduce},
        cloudpickle.Pickler.dispatch_table,
    )


def is_std(module: Any) -> bool:
    """Is ``module`` part of Python's standard library (and not ``__main__``)?  Such
    functions are pickled by reference: every node has them."""
    name = getattr(module, "__name__", "") or ""
    if not name or name == "__main__":
        return False
    if name.split(".")[0] in sys.stdlib_module_names:
        return True
    path = getattr(module, "__file__", None)
    if not path:
        return False
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    return os.path.dirname(os.path.realpath(path)) == stdlib


def unfunc(packed: bytes, globals: dict[str, Any] | None = None) -> types.FunctionType:
    """The function of 0.5's by-value form: ``marshal.dumps((code, defaults))``, with a
    globals dict holding only the builtins unless ``globals`` is given."""
    code, defaults = marshal.loads(packed)
    namespace = globals if globals is not None else {"__builtins__": __builtins__}
    return types.FunctionType(code, namespace, argdefs=defaults)


def unpartial(packed: bytes) -> functools.partial:
    """The partial of 0.5's form: a pickle of ``(func, args, keywords)``."""
    func, args, keywords = loads(packed)
    return functools.partial(func, *args, **(keywords or {}))


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
