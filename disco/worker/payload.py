"""JSON payloads of a task's messages (the worker protocol, master-api.md 8.2; the report's
states) written and read by ``json``'s C pieces, made once in the process a task is
forked from: ``json.dumps`` and ``json.loads`` make an encoder object per call and run
Python-level wrappers (a regular expression), each a few more pages a forked task writes
(copy-on-write page faults).  The bytes and values are ``json``'s own."""

from __future__ import annotations

import json
from typing import Any

_scan_once = json.JSONDecoder().scan_once
_quote = json.encoder.encode_basestring_ascii


def dump_payload(payload: Any) -> bytes:
    """``json.dumps(payload).encode("utf-8")``, the very same bytes: strings, integers
    and lists, tuples and dicts (string keys) of them, two levels deep, without
    ``json``'s encoder; anything else by ``json.dumps``."""
    data = _dump(payload, 0)
    return data if data is not None else json.dumps(payload).encode("utf-8")


def _dump(value: Any, depth: int) -> bytes | None:
    kind = type(value)
    if kind is str:
        return _quote(value).encode()
    if kind is int:
        return b"%d" % value
    if depth > 2:
        return None
    if kind is list or kind is tuple:
        parts = []
        for item in value:
            part = _dump(item, depth + 1)
            if part is None:
                return None
            parts.append(part)
        return b"[" + b", ".join(parts) + b"]"
    if kind is dict:
        parts = []
        for key, item in value.items():
            part = _dump(item, depth + 1)
            if part is None or type(key) is not str:
                return None
            parts.append(b"%s: %s" % (_quote(key).encode(), part))
        return b"{" + b", ".join(parts) + b"}"
    return None


def load_payload(data: bytes) -> Any:
    """``json.loads(data.decode("utf-8"))`` (its value, its errors) by the C scanner
    alone for a payload without surrounding whitespace."""
    text = data.decode("utf-8")
    try:
        value, end = _scan_once(text, 0)
    except StopIteration:
        end = -1
    if end != len(text):
        return json.loads(text)  # its error, or whitespace around
    return value
