"""Pickling of job objects with functions by value (library.md 15).

``cloudpickle`` pickles functions and classes of ``__main__`` (and lambdas, closures)
by value; importable ones (stdlib, ``disco.*``, installed or shipped modules) by
reference.
"""

from __future__ import annotations

import pickle
from typing import Any

import cloudpickle


def dumps(obj: Any, protocol: int | None = None) -> bytes:
    if protocol is not None and protocol < 0:
        protocol = pickle.HIGHEST_PROTOCOL
    return cloudpickle.dumps(obj, protocol=protocol)


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def dump(obj: Any, file: Any, protocol: int | None = None) -> None:
    file.write(dumps(obj, protocol))


def load(file: Any) -> Any:
    return pickle.load(file)
