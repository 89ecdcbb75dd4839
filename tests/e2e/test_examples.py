"""Every example runs as it stands, against a real embedded master."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from tests.conftest import environ_without_disco, run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
TEXT = os.path.join(EXAMPLES, "data", "declaration.txt")


def run_example(*args: str, env_extra: dict[str, str] | None = None) -> str:
    env = environ_without_disco(**(env_extra or {}))
    return run_python(*args, cwd=EXAMPLES, env=env, timeout=90)


def expected_counts() -> Counter[str]:
    with open(TEXT, encoding="utf-8") as f:
        return Counter(f.read().split())


def test_count_words_prints_the_top_20_words() -> None:
    out = run_example("count_words.py").splitlines()
    assert out[0].split() == ["word", "count"]
    rows = [line.split() for line in out[1:]]
    assert len(rows) == 20
    want = expected_counts()
    top = sorted(want.items(), key=lambda kv: (-kv[1], kv[0].encode()))[:20]
    assert [(w, int(c)) for w, c in rows] == top


def test_wordcount_job_class_counts_every_word() -> None:
    out = run_example("wordcount.py").splitlines()
    got = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out}
    assert got == dict(expected_counts())


def test_grep_finds_matching_lines() -> None:
    out = run_example("grep.py", "Tyrant").splitlines()
    with open(TEXT, encoding="utf-8") as f:
        want = [line.rstrip("\n") for line in f if "Tyrant" in line]
    assert sorted(out) == sorted(want)
    assert want


def test_estimate_pi_is_close() -> None:
    out = run_example("estimate_pi.py", "4", "20000")
    value = float(out.split()[-1])
    assert 3.0 < value < 3.3


def test_simple_innerjoin() -> None:
    out = run_example("simple_innerjoin.py").splitlines()
    assert sorted(out) == sorted(
        [
            "1 ada,analytical engine notes",
            "2 grace,cobol",
            "2 grace,flow-matic",
            "3 edsger,algol",
        ]
    )


@pytest.mark.parametrize("n", [3])
def test_chain_of_jobs(n: int) -> None:
    out = run_example("chain.py", str(n))
    assert out.strip() == repr([(0, n), (0, n)])
