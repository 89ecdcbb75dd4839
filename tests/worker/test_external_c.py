"""External programs (library.md 10.5, 16.6): a C word count compiled with gcc runs as a
job's map and reduce on a real master, speaking the pairs protocol."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter
from typing import Any

import pytest

from disco.core import result_iterator
from disco.error import JobError
from disco.job import Job
from disco.util import external, kvgroup

pytestmark = pytest.mark.timeout(90)

SOURCE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "jobs", "ext_wordcount.c")
LINES = ["the cat sat", "on  the mat", "the end"]


@pytest.fixture(scope="module")
def program(tmp_path_factory: Any) -> str:
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build the external program of this test"
    exe = str(tmp_path_factory.mktemp("ext") / "wordcount")
    subprocess.run([gcc, "-O2", "-Wall", "-o", exe, SOURCE], check=True, timeout=60)
    return exe


def raw_inputs() -> list[str]:
    return ["raw://" + line for line in LINES]


def expected(weight: int = 1) -> dict[bytes, bytes]:
    counts = Counter(" ".join(LINES).split())
    return {w.encode(): str(n * weight).encode() for w, n in counts.items()}


def python_reduce(iter: Any, params: Any) -> Any:
    for word, counts in kvgroup(sorted(iter)):
        yield word, str(sum(int(c) for c in counts)).encode()


def events(master: Any, job: Job) -> str:
    return master.disco.rawevents(job.name)


def test_c_map_with_params_and_python_reduce(master: Any, program: str) -> None:
    job = Job(master=master.url).run(
        input=raw_inputs(),
        map=external([program]),
        reduce=python_reduce,
        ext_params={"weight": "3"},
        partitions=2,
    )
    got = dict(result_iterator(job.wait()))
    assert got == expected(weight=3)
    assert "external map read 1 records" in events(master, job)


def test_c_map_and_c_reduce(master: Any, program: str) -> None:
    job = Job(master=master.url).run(
        input=raw_inputs(),
        map=external([program]),
        reduce=external([program]),
        partitions=3,
    )
    got = dict(result_iterator(job.wait()))
    assert got == expected()
    text = events(master, job)
    assert "external reduce summed" in text


def test_c_map_error_fails_the_job(master: Any, program: str) -> None:
    job = Job(master=master.url).run(input=["raw://FAIL"], map=external([program]))
    with pytest.raises(JobError):
        job.wait()
    text = events(master, job)
    assert "the map got FAIL" in text


def shell_program(tmp_path: Any, body: str) -> dict[str, bytes]:
    op = tmp_path / "op.sh"
    op.write_text("#!/bin/sh\nhead -n 1 > /dev/null\n" + body)
    return external([str(op)])


def test_a_failing_exit_after_the_map_fails_the_task(tmp_path: Any) -> None:
    from disco.worker.classic import external as ext

    program = shell_program(tmp_path, "cat > /dev/null\necho '**<ERR> bye' >&2\nexit 3\n")
    ext.prepare(program, None, str(tmp_path / "ext.map"))
    with pytest.raises(ext.ExternalError, match="bye"):
        ext.close_ext(check=True)

    program = shell_program(tmp_path, "cat > /dev/null\nexit 4\n")
    ext.prepare(program, None, str(tmp_path / "ext.map"))
    with pytest.raises(ext.ExternalError, match="exited with status 4"):
        ext.close_ext(check=True)


@pytest.mark.parametrize(
    "answer, error",
    [
        # count 1, then a key length of 2 GiB
        (r"printf '\001\000\000\000\000\000\000\200'; exec sleep 30", "over the 1 GiB limit"),
        # count 1, a 5-byte key of which 2 bytes come
        (r"printf '\001\000\000\000\005\000\000\000ab'", "sent a truncated record"),
    ],
)
def test_oversized_or_truncated_answers_are_refused(tmp_path: Any, answer: str, error: str) -> None:
    from disco.worker.classic import external as ext

    proc = ext.prepare(shell_program(tmp_path, answer + "\n"), None, str(tmp_path / "ext.map"))
    try:
        with pytest.raises(ext.ExternalError, match=error):
            proc.map(b"x")
    finally:
        ext.close_ext()
