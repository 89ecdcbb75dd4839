"""Job functions of the backend tests (shipped to the workers from this module)."""

from __future__ import annotations

import time
from typing import Any


def int_map(e: Any, params: Any) -> Any:
    yield int(e), ""


def slow_int_map(e: Any, params: Any) -> Any:
    time.sleep(0.5)
    yield int(e), ""


def sleepy_map(e: Any, params: Any) -> Any:
    time.sleep(600)
    yield e, ""


def sum_reduce(iter: Any, params: Any) -> Any:
    yield sum(k for k, v in iter), ""
