"""The ``ddfs`` command against a real three-node master (ddfs.md 4)."""

from __future__ import annotations

import io
import sys

import pytest

from disco.cli.ddfs import main
from disco.util import urlsplit
from tests.ddfs.client.conftest import make_tarball


def run(capsys, cluster, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()))
    try:
        code = main(["-M", cluster.url, *args])
    finally:
        sys.stdin = sys.__stdin__
    out, err = capsys.readouterr()
    return code, out, err


def ok(capsys, cluster, *args: str, stdin: str | None = None) -> str:
    code, out, err = run(capsys, cluster, *args, stdin=stdin)
    assert code == 0, err
    return out


def test_usage_and_errors(capsys, cluster) -> None:
    assert ok(capsys, cluster) == "Disco master at %s\n" % cluster.url
    assert main(["-h"]) == 0
    usage = capsys.readouterr().out
    for command in ("attrs", "blobs", "cat", "chtok", "chunk", "cp", "delattr", "exists",
                    "find", "get", "getattr", "ls", "push", "put", "rm", "setattr", "stat",
                    "tag", "touch", "urls", "xcat"):  # fmt: skip
        assert command in usage
    assert main(["push", "-h"]) == 0 and "--replicas" in capsys.readouterr().out
    code, _, err = run(capsys, cluster, "frobnicate", "x")
    assert code == 1 and "unrecognized command: frobnicate x" in err
    code, _, err = run(capsys, cluster, "get", "disco:test:missing")
    assert code == 1 and "Tag not found." in err
    code, _, err = run(capsys, cluster, "tag", "bad.name", "x")
    assert code == 1 and "Invalid tag" in err


def test_tags_and_listing(capsys, cluster) -> None:
    ok(capsys, cluster, "touch", "disco:test:a", "disco:test:b")
    assert ok(capsys, cluster, "exists", "disco:test:a") == "True\n"
    code, out, err = run(capsys, cluster, "exists", "disco:test:zzz")
    assert (code, out, err) == (1, "", "False\n")
    ok(capsys, cluster, "tag", "disco:test:a", "raw://1 raw://2", "raw://3")
    ok(capsys, cluster, "tag", "disco:test:a", stdin="raw://4\nraw://5 raw://6\n")
    assert ok(capsys, cluster, "urls", "disco:test:a") == (
        "raw://4\nraw://5\traw://6\nraw://1\traw://2\nraw://3\n"
    )
    assert ok(capsys, cluster, "blobs", "disco:test:a").splitlines()[0] == "raw://4"
    ok(capsys, cluster, "put", "disco:test:b", "raw://x")
    assert ok(capsys, cluster, "urls", "disco:test:b") == "raw://x\n"
    ok(capsys, cluster, "cp", "disco:test:a", "disco:test:c")
    assert ok(capsys, cluster, "urls", "-p", "disco:test:c") == ok(
        capsys, cluster, "urls", "disco:test:a"
    )
    assert ok(capsys, cluster, "ls") == "disco:test:a\ndisco:test:b\ndisco:test:c\n"
    assert ok(capsys, cluster, "ls", "disco:test:b", "disco:test:c") == (
        "disco:test:b\ndisco:test:c\n"
    )
    assert ok(capsys, cluster, "ls", "-r", "disco:test:b") == "disco:test:b\n\traw://x\n\n"
    doc = ok(capsys, cluster, "get", "disco:test:b")
    assert doc.startswith("{'version': 1, 'id': 'disco:test:b$") and "[['raw://x']]" in doc
    stat = ok(capsys, cluster, "stat", "disco:test:b").rstrip("\n").split("\t")
    assert stat[0] == "1" and stat[1].startswith("disco:test:b$") and stat[-1] == "{}"
    assert ok(capsys, cluster, "stats", "-p", "disco:test:").count("\n") == 3
    assert ok(capsys, cluster, "rm", "disco:test:a") == "deleted\n"
    assert ok(capsys, cluster, "rm", "-p", "disco:test:") == "deleted\ndeleted\n"
    assert ok(capsys, cluster, "ls") == ""


def test_attributes_and_tokens(capsys, cluster) -> None:
    tag = "disco:test:attrs"
    ok(capsys, cluster, "setattr", tag, "colour", "blue")
    ok(capsys, cluster, "setattr", tag, "size", "3")
    assert ok(capsys, cluster, "getattr", tag, "colour") == "blue\n"
    assert ok(capsys, cluster, "attrs", tag) == "colour\tblue\nsize\t3\n"
    ok(capsys, cluster, "delattr", tag, "size")
    assert ok(capsys, cluster, "attrs", tag) == "colour\tblue\n"
    ok(capsys, cluster, "chtok", tag, "nothing")  # neither -r nor -w: nothing happens
    ok(capsys, cluster, "chtok", "-r", "-w", tag, "sesame")
    code, _, err = run(capsys, cluster, "getattr", tag, "colour")
    assert code == 1 and "Incorrect or missing token." in err
    code, _, err = run(capsys, cluster, "-t", "wrong", "attrs", tag)
    assert code == 1 and "Incorrect or missing token." in err
    assert ok(capsys, cluster, "-t", "sesame", "getattr", tag, "ddfs:write-token") == "sesame\n"
    ok(capsys, cluster, "-t", "sesame", "chtok", "-r", tag, "open")
    assert ok(capsys, cluster, "-t", "open", "getattr", tag, "colour") == "blue\n"
    assert ok(capsys, cluster, "exists", tag) == "True\n"  # 401 counts as existing


def test_push_cat_and_blobs(capsys, cluster, tmp_path) -> None:
    (tmp_path / "one.txt").write_bytes(b"first file\n")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "two.txt").write_bytes(b"second file\n")
    tag = "disco:test:push"
    code, out, err = run(
        capsys, cluster, "push", "-n", "2", tag, str(tmp_path / "one.txt"), str(tmp_path / "dir")
    )
    assert code == 0 and out == "pushing...\n"
    assert err == "%s is a directory (not pushing).\n" % (tmp_path / "dir")
    ok(capsys, cluster, "push", "-r", "-F", "127.0.0.3", tag, str(tmp_path / "dir"))
    blobs = [line.split("\t") for line in ok(capsys, cluster, "blobs", tag).splitlines()]
    assert [len(b) for b in blobs] == [1, 2]
    assert urlsplit(blobs[0][0])[1].host == "127.0.0.3"
    assert ok(capsys, cluster, "cat", tag) == "second file\nfirst file\n"
    assert ok(capsys, cluster, "cat", blobs[1][0], tag) == "first file\nsecond file\nfirst file\n"
    code, _, err = run(capsys, cluster, "push", tag, str(tmp_path / "nothere"))
    assert code == 1 and "No such file" in err
    # a replica that cannot be read: the next one is tried; with none left, -i ignores it
    broken = blobs[1][0].replace("/blob/", "/blob/00/gone/")
    ok(capsys, cluster, "put", "disco:test:broken", "%s %s" % (broken, blobs[1][0]))
    code, out, err = run(capsys, cluster, "cat", "disco:test:broken")
    assert (code, out) == (0, "first file\n") and "Failed to read %s" % broken in err
    ok(capsys, cluster, "put", "disco:test:broken", broken)
    code, out, err = run(capsys, cluster, "cat", "disco:test:broken")
    assert code == 1 and "every replica failed" in err
    assert run(capsys, cluster, "cat", "-i", "disco:test:broken")[0] == 0


def test_push_tarballs(capsys, cluster, tmp_path) -> None:
    path = make_tarball(tmp_path / "t.tar", {"a.txt": b"alpha\n", "b.log": b"beta\n"})
    out = ok(capsys, cluster, "push", "-x", "-E", ".log", "disco:test:tar", str(path))
    assert out == "extracted a_txt\npushing...\n"
    out = ok(capsys, cluster, "push", "-x", "-z", "-I", "b.", "disco:test:tar", str(path))
    assert out == "extracted b_log_gz\npushing...\n"
    names = [
        line.split("/")[-1].split("$")[0]
        for line in ok(capsys, cluster, "blobs", "disco:test:tar").split()
    ]
    assert names == ["b_log_gz", "a_txt"]


def test_chunk_xcat_and_find(capsys, cluster, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "words.txt").write_bytes(b"alpha\nbeta\ngamma\n")
    out = ok(capsys, cluster, "chunk", "-n", "2", "-S", "0.5", "disco:test:c", "./words.txt")
    assert out.startswith("created: disco://") and out.count("\n") == 1
    assert len(out.split("\t")) == 2
    assert ok(capsys, cluster, "xcat", "disco:test:c") == "alpha\nbeta\ngamma\n"
    # tag arguments are expanded to their blobs (read here as records with -R)
    reader = "disco.worker.task_io.chain_reader"
    ok(capsys, cluster, "chunk", "-u", "-R", reader, "disco:test:d", "disco:test:c")
    assert ok(capsys, cluster, "xcat", "disco:test:d") == "alpha\nbeta\ngamma\n"
    # "-" is standard input
    ok(capsys, cluster, "chunk", "disco:test:d", "-", stdin="delta\n")
    assert ok(capsys, cluster, "xcat", "disco:test:d") == "delta\nalpha\nbeta\ngamma\n"
    # no arguments: input URLs come from standard input
    ok(capsys, cluster, "chunk", "disco:test:e", stdin="./words.txt\n")
    assert ok(capsys, cluster, "xcat", "-p", "disco:test:e") == "alpha\nbeta\ngamma\n"
    code, _, err = run(capsys, cluster, "chunk", "-Z", "0.000001", "disco:test:f", "./words.txt")
    assert code == 1 and "larger than max_record_size" in err
    # xcat of plain (non-record) data needs a reader; -R None reads lines
    ok(capsys, cluster, "push", "disco:test:plain", "words.txt")
    out = ok(capsys, cluster, "xcat", "-R", "None", "disco:test:plain")
    assert out == "alpha\nbeta\ngamma\n"
    out = ok(capsys, cluster, "xcat", "-T", "disco.worker.task_io.default_stream", "disco:test:c")
    assert out == "alpha\nbeta\ngamma\n"

    ok(capsys, cluster, "put", "disco:test:top", "tag://disco:test:c", "tag://disco:test:nope")
    out = ok(capsys, cluster, "find", "-i", "disco:test:top")
    assert out == "tag://disco:test:top\ntag://disco:test:top\ttag://disco:test:c\n"
    code, out, err = run(capsys, cluster, "find", "-w", "disco:test:top")
    assert code == 0 and err == "Tag not found: tag://disco:test:top\ttag://disco:test:nope\n"
    code, _, err = run(capsys, cluster, "find", "disco:test:top")
    assert code == 1 and "Tag not found." in err


def test_job_mode(capsys, cluster) -> None:
    from tests.client.shjobs import jobpack

    name = cluster.disco.submit(jobpack(inputs=["raw://a"], map=True, prefix="Out"))
    cluster.disco.wait(name)
    out = ok(capsys, cluster, "xcat", "-j", "-R", "None", "@")
    assert out == "hello map_shuffle\n"
    assert ok(capsys, cluster, "cat", "-j", name) == "hello map_shuffle\n"


@pytest.mark.parametrize("command", ["attrs", "get", "getattr"])
def test_missing_arguments(capsys, cluster, command) -> None:
    code, _, err = run(capsys, cluster, command)
    assert code == 1 and "required" in err


def test_oob_through_ddfs(capsys, cluster) -> None:
    """OOB values live in DDFS (ddfs.md 7.3): the client, ``Disco`` and ``disco oob``."""
    from disco.cli.disco import main as disco_main
    from disco.error import DiscoError
    from disco.util import load_oob, save_oob

    job = "Job@5a1:2:3"
    save_oob(cluster.url, job, "answer", b"41")
    save_oob(cluster.url, job, "answer", b"42")
    save_oob(cluster.url, job, "other", b"x")
    assert load_oob(cluster.url, job, "answer") == b"42"  # the newest
    assert load_oob(cluster.url, job, "nokey") is None
    assert sorted(cluster.disco.oob_list(job)) == ["answer", "other"]
    assert cluster.disco.oob_get(job, "other") == b"x"
    with pytest.raises(DiscoError, match="Unknown key or jobname"):
        cluster.disco.oob_get("Job@5a1:2:4", "answer")
    assert disco_main(["-M", cluster.url, "oob", job]) == 0
    assert sorted(capsys.readouterr().out.split()) == ["answer", "other"]
    assert disco_main(["-M", cluster.url, "pstats", job]) == 1
    assert "No profile data" in capsys.readouterr().err


def test_as_a_program(cluster, tmp_path) -> None:
    """``python -m disco.cli.ddfs`` (the ``ddfs`` console script) with real pipes."""
    import subprocess

    def ddfs(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "disco.cli.ddfs", "-M", cluster.url, *args],
            input=stdin,
            capture_output=True,
            timeout=60,
        )

    done = ddfs("chunk", "disco:test:prog", "-", stdin=b"first\nsecond\n")
    assert done.returncode == 0 and done.stdout.startswith(b"created: disco://")
    done = ddfs("xcat", stdin=b"disco:test:prog\n")  # tags from stdin
    assert (done.returncode, done.stdout) == (0, b"first\nsecond\n")
    done = ddfs("exists", "disco:test:none")
    assert (done.returncode, done.stdout, done.stderr) == (1, b"", b"False\n")
