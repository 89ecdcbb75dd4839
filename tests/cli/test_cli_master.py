"""The disco command against a real embedded master (library.md 18)."""

from __future__ import annotations

import io
import sys
import textwrap

import pytest

from disco.cli.disco import main
from disco.cli.progress import ProgressBar, render, wait_with_progress
from tests.client.shjobs import BLOCKING_WORKER, OUTPUT_WORKER, jobpack


def run(capsys, master, *args: str) -> tuple[int, str, str]:
    code = main(["-M", master.url, *args])
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, master, *args: str) -> str:
    code, out, err = run(capsys, master, *args)
    assert code == 0, err
    return out


@pytest.fixture
def worker_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sayhello.sh").write_text(OUTPUT_WORKER)
    return "sayhello.sh"


def test_cluster_commands(capsys, master) -> None:
    rows = master.disco.config
    assert ok(capsys, master, "config").splitlines() == ["%s\t%s" % tuple(r) for r in rows]
    nodeinfo = ok(capsys, master, "nodeinfo").splitlines()
    assert nodeinfo[0].startswith("localhost\t{") and "'max_workers'" in nodeinfo[0]
    assert ok(capsys, master, "master_version").strip() == master.disco.master_version()
    assert ok(capsys, master, "jobs") == ""


def test_job_wait_results_and_history(capsys, master, worker_file) -> None:
    name = ok(capsys, master, "job", "-m", "-p", "Hello", worker_file, "raw://a", "raw://b").strip()
    assert name.startswith("Hello@")
    results = ok(capsys, master, "wait", "@").splitlines()
    assert len(results) == 1 and results[0].startswith("dir://")
    assert ok(capsys, master, "results", "@?Hello").splitlines() == results
    maps = ok(capsys, master, "stageresults", "@", "-S", "map").splitlines()
    assert len(maps) == 2
    assert (
        ok(capsys, master, "stageresults", name, "--stage", "map_shuffle").splitlines() == results
    )
    assert ok(capsys, master, "jobs", "-S") == "%s\tready\n" % name

    jobdict = ok(capsys, master, "jobdict", "@?ell").splitlines()
    assert jobdict[0] == name
    assert "\tprefix\tHello" in jobdict and "\tworker\tsayhello.sh" in jobdict

    events = ok(capsys, master, "events", "@")
    assert events == master.disco.rawevents(name)
    first = len(events.splitlines(True)[0].encode())
    assert ok(capsys, master, "events", "-o", str(first), name) == events.encode()[first:].decode()

    data = ok(capsys, master, "deref", "-j", "@").splitlines()
    assert len(data) == 1 and data[0].startswith("disco://localhost/disco/")
    assert ok(capsys, master, "deref", *maps).count("disco://") == 2

    # an unmatched @?text is left as it is: an unknown job
    code, _, err = run(capsys, master, "wait", "@?nomatch")
    assert code == 1 and "Status unknown job" in err

    ok(capsys, master, "purge", "@")
    assert ok(capsys, master, "jobs") == ""


def test_job_stdin_inputs_and_kill(capsys, master, tmp_path, monkeypatch) -> None:
    (tmp_path / "block.sh").write_text(BLOCKING_WORKER)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "stdin", io.StringIO("raw://x\nraw://y\traw://z\n"))
    name = ok(capsys, master, "job", "-m", "block.sh").strip()
    assert master.disco.jobpack(name).jobdict["input"] == ["raw://x", ["raw://y", "raw://z"]]
    ok(capsys, master, "kill", name)
    assert master.disco.results(name)[0] == "dead"
    code, _, err = run(capsys, master, "wait", name)
    assert code == 1 and err.strip() == "Job %s failed: Status dead" % name


def test_submit_from_file_and_stdin(capsys, master, tmp_path, monkeypatch) -> None:
    path = tmp_path / "pack"
    path.write_bytes(jobpack(inputs=["raw://q"], prefix="FromFile"))
    name = ok(capsys, master, "submit", str(path)).strip()
    assert name.startswith("FromFile@")
    stdin = io.TextIOWrapper(io.BytesIO(jobpack(inputs=["raw://q"], prefix="FromStdin")))
    monkeypatch.setattr(sys, "stdin", stdin)
    name2 = ok(capsys, master, "submit").strip()
    assert name2.startswith("FromStdin@")
    assert ok(capsys, master, "wait", name2) == "raw://q\n"
    ok(capsys, master, "kill", name, name2)


def test_run_a_job_class(capsys, master, tmp_path, monkeypatch) -> None:
    home = tmp_path / "jobs"  # not tmp_path: the master's data dir there is named "disco"
    home.mkdir()
    (home / "cli_upper_job.py").write_text(
        textwrap.dedent(
            """
            from disco.job import Job

            class Upper(Job):
                @staticmethod
                def map(line, params):
                    yield getattr(params, "prefix", "") + line.upper(), 1
            """
        )
    )
    monkeypatch.chdir(home)
    monkeypatch.syspath_prepend(str(home))
    name = ok(capsys, master, "run", "-n", "UpperRun", "cli_upper_job.Upper", "raw://abc").strip()
    assert name.startswith("UpperRun@")
    from disco.core import result_iterator

    assert list(result_iterator(master.disco.wait(name, poll_interval=0.1))) == [("ABC", 1)]
    sys.modules.pop("cli_upper_job", None)


class TTY(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_wait_progress_bar_on_a_terminal(master, worker_file) -> None:
    name = master.disco.submit(jobpack(inputs=["raw://a", "raw://b"], map=True))

    out = TTY()
    results = wait_with_progress(master.disco, name, out, poll_interval=0.1)
    assert results == master.disco.results(name)[1]
    text = out.getvalue()
    assert "map         [" in text and "2/2 done" in text
    assert "map_shuffle [" in text and "1/1 done" in text


def test_progress_rendering() -> None:
    lines = render([["map", 1, 3, 1, 2, 1], ["reduce", 0, 0, 0, 0, 0]], width=10)
    assert lines == [
        "map    [###-------] 2/6 done, 1 running, 1 failed",
        "reduce [----------] 0/0 done",
    ]
    out = io.StringIO()
    bar = ProgressBar(out)
    bar.draw(["a"])
    bar.draw(["b"])
    assert out.getvalue() == "\ra\033[K\n\033[1A\rb\033[K\n"


def test_disco_wait_command_draws_the_bar_only_on_a_terminal(master, monkeypatch) -> None:
    name = master.disco.submit(jobpack(inputs=["raw://a", "raw://b"], map=True))

    tty = TTY()
    monkeypatch.setattr(sys, "stdout", tty)
    assert main(["-M", master.url, "wait", name]) == 0
    text = tty.getvalue()
    results = master.disco.results(name)[1]
    assert "map         [" in text and "2/2 done" in text
    assert text.rstrip("\n").endswith(results[0][0])  # then the results, as without a tty
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stdout", pipe)
    assert main(["-M", master.url, "wait", name]) == 0
    assert pipe.getvalue() == results[0][0] + "\n"  # no bar when piped


def test_run_options_map_reduce_partitions_scheduler_param(
    capsys, master, tmp_path, monkeypatch
) -> None:
    home = tmp_path / "jobs"
    home.mkdir()
    (home / "cli_opts_job.py").write_text(
        textwrap.dedent(
            """
            from disco.job import Job

            class Plain(Job):
                pass

            def tagged_map(line, params):
                yield params + ":" + line, 1

            def count_reduce(iter, params):
                from disco.util import kvgroup
                for key, values in kvgroup(sorted(iter)):
                    yield key, sum(values)
            """
        )
    )
    monkeypatch.chdir(home)
    monkeypatch.syspath_prepend(str(home))
    args = ["run", "-m", "cli_opts_job.tagged_map", "-r", "cli_opts_job.count_reduce"]
    args += ["--partitions", "2", "-S", "max_cores", "1", "-P", "params", "tag"]
    name = ok(capsys, master, *args, "cli_opts_job.Plain", "raw://x", "raw://y").strip()
    assert name.startswith("Plain@")
    from disco.core import result_iterator

    results = master.disco.wait(name, poll_interval=0.1)
    assert sorted(result_iterator(results)) == [("tag:x", 1), ("tag:y", 1)]
    jobdict = master.disco.jobpack(name).jobdict
    assert jobdict["nr_reduces"] == 2 and jobdict["scheduler"] == {"max_cores": 1}
    sys.modules.pop("cli_opts_job", None)


def test_deref_resolve_gives_http_urls(capsys, master) -> None:
    name = master.disco.submit(jobpack(inputs=["raw://a"], map=True))
    results = master.disco.wait(name, poll_interval=0.1)
    plain = ok(capsys, master, "deref", results[0][0]).split()
    resolved = ok(capsys, master, "deref", "-r", results[0][0]).split()
    assert len(plain) == len(resolved) == 1 and plain[0].startswith("disco://localhost/")
    port = master.url.rsplit(":", 1)[1]
    assert resolved == ["http://localhost:%s/%s" % (port, plain[0].split("/", 3)[3])]
