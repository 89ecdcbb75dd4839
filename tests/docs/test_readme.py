"""Every Python block of README.md runs as shown (issue 12.3).

Each ```python block is run on its own, in a subprocess from the repository root, and
must print what the ```text output block right after it shows: first on the embedded
master a new user gets (no master configured), then twice on one running master, so a
block that leaves state behind (a tag it appends to) shows up on the second run.
"""

from __future__ import annotations

import os
import re

import pytest

from disco.embedded import EmbeddedMaster
from tests.conftest import environ_without_disco, free_port, run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.M | re.S)


def readme_examples() -> list[tuple[str, str]]:
    """``(code, expected output)`` of every Python block; the next fence must be its
    ``text output`` block."""
    with open(README, encoding="utf-8") as f:
        fences = [(m.group(1).strip(), m.group(2)) for m in FENCE.finditer(f.read())]
    examples = []
    for i, (info, body) in enumerate(fences):
        if info == "python":
            follows = fences[i + 1] if i + 1 < len(fences) else ("", "")
            assert follows[0] == "text output", "README block %d has no output block" % i
            examples.append((body, follows[1]))
    return examples


EXAMPLES = readme_examples()


def _env(tmp_path, master: EmbeddedMaster | None) -> dict[str, str]:
    env = environ_without_disco(
        DISCO_HOME=str(tmp_path / "home"),
        DISCO_ROOT=str(tmp_path / "root"),
        DISCO_SETTINGS_FILE="",
        # no master: nothing answers there, default_master() starts an embedded one
        DISCO_PORT=str(master.port if master is not None else free_port()),
        DISCO_MASTER_HOST="127.0.0.1",
    )
    if master is not None:
        env["DISCO_MASTER"] = master.url
    return env


def _run(code: str, env: dict[str, str]) -> str:
    return run_python("-c", code, cwd=ROOT, env=env)


def test_readme_has_python_examples_with_outputs() -> None:
    assert len(EXAMPLES) >= 3
    assert all(expected.strip() for _code, expected in EXAMPLES)


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_runs_as_shown_and_again(index, tmp_path) -> None:
    code, expected = EXAMPLES[index]
    assert _run(code, _env(tmp_path / "embedded", None)) == expected
    with EmbeddedMaster(root=tmp_path / "master", export_env=False) as master:
        env = _env(tmp_path / "shared", master)
        assert _run(code, env) == expected
        assert _run(code, env) == expected  # run again: the same output


def test_readme_says_a_single_node_keeps_one_copy() -> None:
    with open(README, encoding="utf-8") as f:
        text = " ".join(f.read().split())
    assert "with a single node, as here, there is one copy of each blob" in text
    assert "replicated" not in text  # the word promised copies a single node cannot make
