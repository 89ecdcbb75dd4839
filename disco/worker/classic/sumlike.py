"""Recognising a combiner that only sums (issue 13), so the map loop can add in place.

A combiner (library.md 8.1) is called once per map output, a Python call per record.
The one users write first sums: ``buf[key] = buf.get(key, 0) + value`` and
``return buf.items()`` when ``done``, like ``sum_combiner``.  ``is_sum_like`` tells
whether a function is exactly that: ``sum_combiner`` itself, or a plain function whose
compiled code equals one of the spellings below, compiled by this interpreter (argument
names and a docstring may differ; no global names, closures or defaults are read).
With such a combiner, every record of a task adds into one dict (``buf.get(key, 0) +
value``, the same expression on equal keys, so the same values), and the buffers of the
partitions are made from it at the end: the map loop does no call per record.
"""

from __future__ import annotations

import itertools
import textwrap
import types
from collections.abc import Iterable, Iterator
from typing import Any

#: The spellings recognised, as function bodies of ``(key, value, buf, done, params)``.
SPELLINGS = (
    "if done:\n    return buf.items()\nbuf[key] = buf.get(key, 0) + value\n",
    "if done:\n    return buf.items()\nbuf[key] = buf.get(key, 0) + value\nreturn None\n",
    "if not done:\n    buf[key] = buf.get(key, 0) + value\n    return None\nreturn buf.items()\n",
    "if not done:\n    buf[key] = buf.get(key, 0) + value\nelse:\n    return buf.items()\n",
)
_DOC = object()  # stands for a docstring in a signature
#: Flags that change how a function is called or what a call returns (varargs,
#: varkeywords, generator, coroutine, iterable coroutine, async generator).
_SHAPE_FLAGS = 0x0004 | 0x0008 | 0x0020 | 0x0080 | 0x0100 | 0x0200
_known: set[tuple[Any, ...]] = set()


def _signature(code: types.CodeType) -> tuple[Any, ...]:
    """What decides what ``code`` does, given its arguments (not names or line numbers)."""
    consts = code.co_consts
    if consts and isinstance(consts[0], str):  # a docstring (the code never loads it)
        consts = (_DOC,) + consts[1:]
    return (
        code.co_code,
        consts,
        code.co_names,
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_nlocals,
        code.co_freevars,
        code.co_cellvars,
        getattr(code, "co_exceptiontable", b""),
        code.co_flags & _SHAPE_FLAGS,
    )


def _compiled(body: str, docstring: bool) -> types.CodeType:
    doc = '    """doc"""\n' if docstring else ""
    source = "def f(key, value, buf, done, params):\n" + doc + textwrap.indent(body, "    ")
    namespace: dict[str, Any] = {}
    exec(compile(source, "<sum-like combiner>", "exec"), namespace)
    return namespace["f"].__code__


def known_signatures() -> set[tuple[Any, ...]]:
    """The signatures of every spelling, with and without a docstring (made once)."""
    if not _known:
        _known.update(
            _signature(_compiled(body, doc)) for body in SPELLINGS for doc in (False, True)
        )
    return _known


def is_sum_like(combiner: Any) -> bool:
    """Is ``combiner`` ``sum_combiner``, or a function that does exactly what it does
    (one of the spellings of this module, compiled the same)?"""
    from disco.worker.classic.func import sum_combiner

    if combiner is sum_combiner:
        return True
    if type(combiner) is not types.FunctionType:
        return False  # a method, a partial, a callable object: its own rules
    return _signature(combiner.__code__) in known_signatures()


def add_up(
    pair_iters: Iterable[Any], totals: dict[Any, Any], one_partition: bool = False
) -> Iterator[Any] | None:
    """Add the records of ``pair_iters`` (each one entry's ``(key, value)`` pairs) into
    ``totals``: ``totals[key] = totals.get(key, 0) + value``, what a sum-like combiner
    does to its buffer.

    With several partitions only keys whose type is exactly ``str``, ``bytes`` or
    ``int`` are added here: among them equal keys have the same partition, so one dict
    for all the partitions holds what their buffers would (``1``, ``1.0`` and ``True``
    are one dict key, but may have different partitions).  With ``one_partition`` every
    record would go to one buffer: any key is added.  At the first other key, or an
    addition that raises (an unhashable key, a value that does not add), it stops and
    returns the rest of that entry's pairs, that record first, for the general loop
    (which calls the combiner itself); ``None`` once every entry is added.
    """
    get = totals.get
    if one_partition:
        for pairs in pair_iters:
            pairs = iter(pairs)
            for key, value in pairs:
                try:
                    totals[key] = get(key, 0) + value
                    continue
                except Exception:
                    pass
                return itertools.chain(((key, value),), pairs)
        return None
    for pairs in pair_iters:
        pairs = iter(pairs)
        for key, value in pairs:
            kind = type(key)
            if kind is str or kind is bytes or kind is int:
                try:
                    totals[key] = get(key, 0) + value
                    continue
                except Exception:
                    pass
            return itertools.chain(((key, value),), pairs)
    return None
