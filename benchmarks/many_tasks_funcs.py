"""Job functions of the many-tasks benchmark and of tests/e2e/test_many_tasks.py (shipped to
the workers by module name)."""

from __future__ import annotations

from typing import Any


def square_map(entry: Any, params: Any) -> Any:
    """A ``raw://<n>`` input: one record ``(n, "<n squared>")``."""
    n = int(entry)
    yield str(n), str(n * n)


def residue_map(entry: Any, params: Any) -> Any:
    """A ``raw://<n>`` input: one record ``("r<n mod 7>", n)``."""
    n = int(entry)
    yield "r%d" % (n % 7), n


def sum_reduce(iter: Any, params: Any) -> Any:
    """Sum of the values per key."""
    totals: dict[Any, int] = {}
    for key, value in iter:
        totals[key] = totals.get(key, 0) + int(value)
    return sorted(totals.items())
