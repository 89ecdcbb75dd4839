"""The disco command without traps for a new user (issue 12.5): options after the job
class, help for every option and for ``@``, one prompt error when the master is down,
a hint when the job's module cannot be imported, and a quiet end on a closed pipe."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from disco.cli.disco import main
from disco.core import result_iterator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")
DECLARATION = "file://" + os.path.join(EXAMPLES, "data", "declaration.txt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _disco(*args: str, cwd: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCO_", "DDFS_"))}
    env.pop("PYTHONPATH", None)
    env["DISCO_SETTINGS_FILE"] = ""
    code = "import sys; from disco.cli.disco import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=cwd,
        env=env,
        capture_output=kwargs.pop("capture_output", True),
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        **kwargs,
    )


def test_options_after_the_job_class_as_grep_docstring_shows(capsys, master, monkeypatch):
    """``disco run grep.Grep -P params PATTERN INPUT...`` (examples/grep.py usage)."""
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.syspath_prepend(EXAMPLES)
    try:
        code = main(["-M", master.url, "run", "grep.Grep", "-P", "params", "Liberty", DECLARATION])
        out, err = capsys.readouterr()
        assert code == 0, err
        lines = [k for k, _ in result_iterator(master.disco.wait(out.strip(), poll_interval=0.1))]
        assert lines and all(b"Liberty" in line for line in lines)
        # inputs before and after the options are all kept
        code = main(
            ["-M", master.url, "run", "grep.Grep", "raw://Liberty", "-P", "params", "L", "raw://x"]
        )
        out, err = capsys.readouterr()
        assert code == 0, err
        inputs = master.disco.jobpack(out.strip()).jobdict["input"]
        assert inputs == ["raw://Liberty", "raw://x"]
        # an unknown option after the class is still an error
        assert main(["-M", master.url, "run", "grep.Grep", "raw://x", "--nosuch"]) == 1
        assert "unrecognized arguments: --nosuch" in capsys.readouterr().err
    finally:
        sys.modules.pop("grep", None)


def test_every_run_option_has_help_and_help_says_what_at_means(capsys) -> None:
    assert main(["run", "-h"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for option, words in [
        ("-m EXPR, --map EXPR", "the map function"),
        ("-r EXPR, --reduce EXPR", "the reduce function"),
        ("--save EXPR", "True: keep the results in DDFS"),
        ("--profile EXPR", "True: profile every task"),
        ("--partitions EXPR", "number of reduce partitions"),
    ]:
        assert "%s %s" % (option, words) in text
    assert main(["-h"]) == 0
    assert "@ means the last job" in " ".join(capsys.readouterr().out.split())
    for command in ("wait", "events", "results", "kill", "purge", "jobdict", "pstats"):
        assert main([command, "-h"]) == 0
        assert "@ is the last job" in " ".join(capsys.readouterr().out.split()), command


def test_master_down_is_said_once_at_once() -> None:
    url = "http://127.0.0.1:%d" % _free_port()
    proc = _disco("-M", url, "run", "grep.Grep", "raw://a", cwd=EXAMPLES)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == "Connection refused (is disco master running at %s?)\n" % url


def test_module_outside_the_project_gets_a_hint(tmp_path) -> None:
    proc = _disco("run", "examples.grep.Grep", "raw://a", cwd=str(tmp_path))
    assert proc.returncode == 1
    err = proc.stderr
    assert err.startswith("No module named 'examples':") and err.count("\n") == 1
    assert "importable" in err and "current directory (%s)" % tmp_path in err
    assert "PYTHONPATH" in err


def test_run_without_any_input_is_refused(tmp_path) -> None:
    url = "http://127.0.0.1:%d" % _free_port()  # refused before the master is asked
    proc = _disco("-M", url, "run", "grep.Grep", cwd=EXAMPLES)
    assert proc.returncode == 1
    assert proc.stderr.startswith("The job has no input: give input=[...]")


@pytest.mark.parametrize("command", [["events", "@"], ["jobs"]])
def test_closed_pipe_ends_quietly(master, command) -> None:
    """``disco events @ | head``: the reader is gone before we write."""
    from tests.client.shjobs import jobpack

    master.disco.wait(master.disco.submit(jobpack(inputs=["raw://a"])), poll_interval=0.1)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = _disco(
            "-M",
            master.url,
            *command,
            stdout=write_end,
            stderr=subprocess.PIPE,
            capture_output=False,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, "")
