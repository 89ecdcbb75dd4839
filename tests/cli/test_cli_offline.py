"""The disco command without a master: parsing, global options, errors, job packs."""

from __future__ import annotations

import io
import json
import os
import zipfile

import pytest

from disco.cli import ddfs as ddfs_cli
from disco.cli.disco import _command_index, main
from disco.job import JobPack


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith(("DISCO_", "DDFS_")):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DISCO_ROOT", str(tmp_path / "root"))
    monkeypatch.setenv("DISCO_SETTINGS_FILE", "")


def test_no_command_prints_the_master(capsys) -> None:
    assert main(["-M", "http://m:1"]) == 0
    assert capsys.readouterr().out == "Disco master at http://m:1\n"
    # -M without a port gets DISCO_PORT
    assert main(["-M", "somehost"]) == 0
    assert capsys.readouterr().out == "Disco master at somehost:8989\n"


def test_unknown_command(capsys) -> None:
    assert main(["-M", "x:1", "frobnicate", "a"]) == 1
    assert capsys.readouterr().err == "unrecognized command: frobnicate a\n"


def test_help_lists_commands(capsys) -> None:
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    for name in ("start", "wait", "stageresults", "jobdict", "client_version"):
        assert name in out
    assert main(["wait", "-h"]) == 0
    assert "jobname" in capsys.readouterr().out


def test_missing_argument_is_an_error(capsys) -> None:
    assert main(["wait"]) == 1
    assert "jobname" in capsys.readouterr().err


def test_global_options_anywhere() -> None:
    assert _command_index(["-M", "h:1", "-v", "jobs", "-S"]) == 3
    assert _command_index(["-s", "file", "wait", "@"]) == 2


def test_settings_file_must_exist(capsys, tmp_path) -> None:
    assert main(["-s", str(tmp_path / "nope"), "client_version"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_settings_file_and_verbose(capsys, tmp_path) -> None:
    path = tmp_path / "settings.py"
    path.write_text("DISCO_PORT = 4242\nDISCO_MASTER_HOST = 'filehost'\n")
    assert main(["status", "-s", str(path), "-v"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "DISCO_PORT = 4242" in out
    assert out == sorted(out[:-1]) + [out[-1]]  # settings sorted, then the command output
    assert out[-1] == "Master filehost:4242 stopped"
    assert "DISCO_SETTINGS_FILE" not in os.environ or os.environ["DISCO_SETTINGS_FILE"] == ""


def test_token_sets_ddfs_tokens(capsys) -> None:
    assert main(["-v", "-t", "secret", "client_version"]) == 0
    out = capsys.readouterr().out
    assert "DDFS_READ_TOKEN = secret" in out and "DDFS_WRITE_TOKEN = secret" in out


def test_versions_and_ddfs(capsys) -> None:
    assert main(["client_version"]) == 0
    assert capsys.readouterr().out.strip()
    assert ddfs_cli.main(["-M", "http://127.0.0.1:9"]) == 0
    assert capsys.readouterr().out == "Disco master at http://127.0.0.1:9\n"
    assert ddfs_cli.main(["nosuch"]) == 1
    assert "unrecognized command: nosuch" in capsys.readouterr().err


def test_job_dump_builds_a_v1_pack(capsysbinary, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "myworker.sh").write_text("#!/bin/sh\necho hi\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "a.txt").write_text("A")
    (tmp_path / "data.bin").write_bytes(b"\x00jobdata")
    args = ["job", "-D", "-m", "-n", "3", "-S", "max_cores", "7", "-e", "K", "V"]
    args += ["-f", "extra", "-d", "@data.bin", "myworker.sh", "raw://a", "raw://b"]
    assert main(args) == 0
    pack = JobPack.load(io.BytesIO(capsysbinary.readouterr().out))
    assert pack.version == 1
    jobdict = pack.jobdict
    assert jobdict["prefix"] == "myworker"
    assert jobdict["worker"] == "myworker.sh"
    assert jobdict["input"] == ["raw://a", "raw://b"]
    assert (jobdict["map?"], jobdict["reduce?"], jobdict["nr_reduces"]) == (True, False, 3)
    assert jobdict["scheduler"] == {"max_cores": 7}
    assert jobdict["owner"]
    assert pack.jobenvs == {"K": "V"}
    assert pack.jobdata == b"\x00jobdata"
    names = zipfile.ZipFile(io.BytesIO(pack.jobhome)).namelist()
    assert sorted(names) == ["extra/a.txt", "myworker.sh"]
    json.dumps(jobdict)  # plain JSON
