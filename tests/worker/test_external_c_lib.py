"""The C helpers for external programs (issue 11.10): ``disco/ext/disco.h`` and
``disco.c``, found through ``ext_dir()`` (``$DISCO_HOME/ext`` or the package copy), build
a C word count that runs as a job's map and reduce on a real master; and the helpers'
behaviour at the protocol level (parameters, entry reuse, zero bytes, messages, die)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tomllib
from collections import Counter
from typing import Any

import pytest

from disco.core import result_iterator
from disco.error import JobError
from disco.job import Job
from disco.util import external
from disco.worker.classic import external as ext

pytestmark = pytest.mark.timeout(120)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORDCOUNT = os.path.join(ROOT, "tests", "jobs", "ext_wordcount_lib.c")
LINES = ["the cat sat", "on  the mat", "the end", "a cat and a hat"]
FILE_LINES = ["the file has the words", "cat cat cat"]

ECHO = r"""
#include <string.h>
#include "disco.h"

/* map: answers each record with (key, value), then (the saved first key, value),
 * and (param name, its value) for the parameter named by the value. */
int main(int argc, char **argv) {
    const disco_params *params = read_parameters();
    msg("params %u\nsecond line", disco_param_count(params));
    p_entry *key = NULL, *val = NULL, *first = NULL;
    while (read_kv(&key, &val)) {
        if (!first) copy_entry(&first, key);
        if (strcmp(val->data, "DIE") == 0) die("asked to die, %d", 42);
        const p_entry *p = disco_param_entry(params, val->data);
        write_num_prefix(p ? 3 : 2);
        write_kv(key, val);
        write_kv(first, val);
        if (p) write_kv(val, p);
    }
    return argc == 2 && strcmp(argv[1], "map") == 0 ? 0 : 2;
}
"""


def gcc() -> str:
    path = shutil.which("gcc")
    if not path:
        pytest.skip("gcc is not installed: cannot build a C program against disco.h")
    return path


def build(source: str, exe: str) -> str:
    folder = ext.ext_dir()
    subprocess.run(
        [
            gcc(),
            "-O2",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-I",
            folder,
            "-o",
            exe,
            source,
            os.path.join(folder, "disco.c"),
        ],
        check=True,
        timeout=120,
    )
    return exe


@pytest.fixture(scope="module")
def wordcount(tmp_path_factory: Any) -> str:
    return build(WORDCOUNT, str(tmp_path_factory.mktemp("ext") / "wordcount"))


@pytest.fixture(scope="module")
def echo(tmp_path_factory: Any) -> str:
    folder = tmp_path_factory.mktemp("echo")
    source = folder / "echo.c"
    source.write_text(ECHO)
    return build(str(source), str(folder / "echo"))


def test_ext_dir_is_the_installed_package_copy() -> None:
    folder = ext.ext_dir()
    assert folder == os.path.join(ROOT, "disco", "ext")
    assert {"disco.h", "disco.c"} <= set(os.listdir(folder))
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        data = tomllib.load(f)["tool"]["setuptools"]["package-data"]["disco"]
    assert "ext/disco.h" in data and "ext/disco.c" in data
    assert "py.typed" in data  # the existing entries are kept


def test_ext_dir_prefers_disco_home_ext(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DISCO_HOME", str(tmp_path))
    assert ext.ext_dir() == os.path.join(ROOT, "disco", "ext")  # no ext/ there yet
    (tmp_path / "ext").mkdir()
    (tmp_path / "ext" / "disco.h").write_text("/* a site's own copy */\n")
    assert ext.ext_dir() == str(tmp_path / "ext")


def expected(weight: int) -> dict[bytes, bytes]:
    counts = Counter(" ".join(LINES + FILE_LINES).split())
    return {w.encode(): str(n * weight).encode() for w, n in counts.items()}


def test_c_word_count_built_on_disco_h(master: Any, wordcount: str, tmp_path: Any) -> None:
    text = tmp_path / "words.txt"
    text.write_text("\n".join(FILE_LINES) + "\n")
    inputs = ["raw://" + line for line in LINES] + ["file://" + str(text)]
    job = Job(master=master.url).run(
        input=inputs,
        map=external([wordcount]),
        reduce=external([wordcount]),
        ext_params={"weight": "2"},
        partitions=3,
    )
    got = dict(result_iterator(job.wait()))
    assert got == expected(weight=2)
    assert got[b"cat"] == b"10" and got[b"the"] == b"10"
    events = master.disco.rawevents(job.name)
    assert "external map read 1 records, weight 2" in events
    assert "external reduce summed" in events


def test_die_fails_the_job_with_its_message(master: Any, wordcount: str) -> None:
    job = Job(master=master.url).run(input=["raw://FAIL"], map=external([wordcount]))
    with pytest.raises(JobError):
        job.wait()
    assert "the map got FAIL" in master.disco.rawevents(job.name)


def start(echo: str, tmp_path: Any, params: Any) -> ext.ExternalProcess:
    return ext.prepare(external([echo]), params, str(tmp_path / "ext.map"))


def test_records_params_and_entry_reuse(echo: str, tmp_path: Any, capfd: Any) -> None:
    params = {"weight": "3", "empty": "", "bin": "a\x00b"}
    proc = start(echo, tmp_path, params)
    try:
        assert proc.map((b"k1", b"weight")) == [
            (b"k1", b"weight"),
            (b"k1", b"weight"),
            (b"weight", b"3"),
        ]
        # a longer record grows the entries; the saved first key stays k1
        big = b"x" * 100_000
        assert proc.map((big, b"\x00zero\x00")) == [
            (big, b"\x00zero\x00"),
            (b"k1", b"\x00zero\x00"),
        ]
        # a shorter one reuses them; empty values and values with zero bytes come through
        assert proc.map((b"", b"empty")) == [(b"", b"empty"), (b"k1", b"empty"), (b"empty", b"")]
        assert proc.map(b"bin") == [(b"", b"bin"), (b"k1", b"bin"), (b"bin", b"a\x00b")]
    finally:
        ext.close_ext(check=True)
    # msg(): one message line, its newline turned into a space
    assert "params 3 second line" in capfd.readouterr().err


def test_no_params_and_die(echo: str, tmp_path: Any) -> None:
    proc = start(echo, tmp_path, None)  # "0\n": an empty table
    try:
        assert proc.map((b"a", b"weight")) == [(b"a", b"weight"), (b"a", b"weight")]
        with pytest.raises(ext.ExternalError, match="asked to die, 42"):
            proc.map((b"a", b"DIE"))
    finally:
        ext.close_ext()


def test_truncated_input_dies(echo: str) -> None:
    record = b"0\n" + struct.pack("=I", 5) + b"ab"
    done = subprocess.run([echo, "map"], input=record, capture_output=True, timeout=30)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == b"**<ERR> truncated input: key"


def test_the_wheel_installs_the_c_helpers(tmp_path: Any) -> None:
    """Built from a copy of the sources (no build/ in the tree), the wheel holds
    disco/ext/disco.h and disco/ext/disco.c."""
    import sys
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(
        os.path.join(ROOT, "disco"), src / "disco", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(ROOT, name), src / name)
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"disco/ext/disco.h", "disco/ext/disco.c"} <= names
