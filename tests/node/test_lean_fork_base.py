"""A lean fork base (docs/decisions.md): what a job's warm process imports and maps is
what its tasks need; the rest is imported where it is used, and still works there; the
warm process's own loop (``_WarmProcess.serve``) reads the node's requests and a
finished task's pipe as the general code does."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from disco.core import Job, result_iterator
from disco.node import zygote_process as zp
from disco.worker import rehearse
from tests.node import lean_funcs

pytestmark = pytest.mark.timeout(120)


def test_the_zygote_s_preload_and_rehearsal_import_none_of_the_lean_modules() -> None:
    """What every warm process and task is forked from: the zygote after its preload
    and rehearsal (a fresh interpreter, as the zygote is)."""
    code = (
        "import sys\n"
        "from disco.node import zygote_process as zp\n"
        "zp._preload()\n"
        "from disco.worker.rehearse import rehearse\n"
        "assert rehearse(times=2) == 2\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert "disco.worker.classic.worker" in out
    assert [name for name in lean_funcs.LEAN if name in out] == []


def test_a_task_starts_without_the_lean_modules(master) -> None:
    inputs = ["raw://%d" % n for n in range(3)]
    job = Job(master=master.url).run(input=inputs, map=lean_funcs.loaded_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert got == {str(n): [] for n in range(3)}


def test_job_code_and_helpers_that_need_the_lean_modules_import_them(master) -> None:
    """Each task imports them itself: ``random`` seeded anew in every task, the helpers
    of ``disco.util``, ``disco.compat`` and ``disco.jobzip`` that use them work."""
    inputs = ["raw://%d" % n for n in range(4)]
    job = Job(master=master.url).run(input=inputs, map=lean_funcs.lazy_user_map)
    got = dict(result_iterator(job.wait(timeout=60)))
    assert sorted(got) == [str(n) for n in range(4)]
    randoms = {values[0] for values in got.values()}
    assert len(randoms) == 4  # no two tasks share a random state
    for values in got.values():
        assert values[1:] == [True, True, True, 0, ["f"], True, [1, 2, 3], [1, 2, 3]]


@pytest.mark.parametrize(
    "line",
    [
        b'{"id": 1, "report": "/tmp/x/report-1"}',
        b'{"id": 17, "report": null}',
        b'{"id": 3, "report": "/t\\u00e9st \\"q\\"\\\\ \\n"}',
        b'{"id": 5, "report": "a\\"b"}',
        b'{"id": 6, "report": ""}',
        b'  {"id": 2, "report": "a"}  ',
        '{"id": 4, "report": "h\u00e9"}'.encode(),
        b'{"id": "x", "report": "a"}',
        b'{"report": "a", "id": 8}',
    ],
)
def test_request_reads_what_json_reads(line: bytes) -> None:
    req = json.loads(line)
    assert zp._request(line) == (req["id"], req.get("report"))


def test_request_of_the_node_s_own_bytes() -> None:
    for rid, report in [(1, "/a/b-1"), (99999, None), (7, "/x y/z")]:
        line = json.dumps({"id": rid, "report": report}).encode()
        assert zp._request(line) == (rid, report)


@pytest.mark.parametrize("line", [b'{"id": 1, "report": "}', b'{"id": 1, "report": "a"'])
def test_request_fails_as_json_does(line: bytes) -> None:
    with pytest.raises(ValueError):
        json.loads(line)
    with pytest.raises(ValueError):
        zp._request(line)


def _finished(tmp_path, data: bytes) -> list[str]:
    r, w = os.pipe()
    os.set_blocking(r, False)
    os.write(w, data)
    os.close(w)
    path = str(tmp_path / "report")
    zp._finish((r, path, 0.0), b'{"max_mem": 0}')
    with pytest.raises(OSError):
        os.fstat(r)  # closed
    return sorted(os.listdir(tmp_path))


def test_a_finished_task_s_pipe_leaves_no_file(tmp_path) -> None:
    assert _finished(tmp_path, b'\0{"input": 1}\n\0D\n') == []
    assert _finished(tmp_path, b"\0D\n") == []


def test_a_task_that_did_not_finish_leaves_its_report_and_crash_text(tmp_path) -> None:
    """As ``_TaskChannel.finish`` decides: the report's last state unless the task
    finished or wrote its own failure report; its crash text unless it finished."""
    cases = [
        (b"", ["report"]),  # the memory limit it was given
        (b'\0{"input": 2}\nFatal Python error\n', ["report", "report.crash"]),
        (b'\0{"input": 3}\n\0F\nFatal\n', ["report.crash"]),
        (b"Traceback\n\0D\n", []),
        (b'\0{"input": 4}\n\0F\n', []),
    ]
    for n, (data, files) in enumerate(cases):
        os.mkdir(tmp_path / str(n))
        assert _finished(tmp_path / str(n), data) == files, data
    assert (tmp_path / "0" / "report").read_bytes() == b'{"max_mem": 0}'
    assert (tmp_path / "1" / "report").read_bytes() == b'{"input": 2}'
    assert (tmp_path / "1" / "report.crash").read_bytes() == b"Fatal Python error\n"


def test_the_rehearsal_s_directory_is_made_and_removed_without_tempfile(tmp_path) -> None:
    path = rehearse._mkdtemp(str(tmp_path))
    assert os.path.basename(path).startswith("%s%d-" % (rehearse._PREFIX, os.getpid()))
    assert os.stat(path).st_mode & 0o777 == 0o700
    os.makedirs(os.path.join(path, "a", "b"))
    with open(os.path.join(path, "a", "b", "f"), "w") as f:
        f.write("x")
    os.symlink("/", os.path.join(path, "link"))  # removed, not followed
    rehearse._rmtree(path)
    assert os.listdir(tmp_path) == []
    rehearse._rmtree(path)  # gone already: no error
