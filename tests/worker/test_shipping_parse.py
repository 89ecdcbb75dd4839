"""Module shipping survives CPython 3.11's shared ast recursion counter (a parse in another
thread at the same moment makes ``ast.parse`` raise SystemError once)."""

from __future__ import annotations

import ast

import pytest

from disco.worker import shipping


def test_a_spoiled_parse_is_tried_again(monkeypatch) -> None:
    real = ast.parse
    calls = []

    def flaky(source, path):
        calls.append(path)
        if len(calls) == 1:
            raise SystemError("AST constructor recursion depth mismatch (before=141, after=160)")
        return real(source, path)

    monkeypatch.setattr(shipping.ast, "parse", flaky)
    tree = shipping.parse_source(b"import json\n", "m.py")
    assert isinstance(tree.body[0], ast.Import) and len(calls) == 2


def test_a_parse_that_keeps_failing_raises(monkeypatch) -> None:
    def broken(source, path):
        raise SystemError("AST constructor recursion depth mismatch")

    monkeypatch.setattr(shipping.ast, "parse", broken)
    with pytest.raises(SystemError):
        shipping.parse_source(b"x = 1\n", "m.py")
