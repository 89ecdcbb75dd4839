"""The one validator of names that become paths (disco/safenames.py, issue 8.1)."""

from __future__ import annotations

import os

import pytest

from disco import safenames as sn

BAD_NAMES = ["", "..", ".", "a/b", "../x", "/abs", "a\0b", "\ud800", "a b", "a.b", "x" * 187, 42]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_job_names_refused(name):
    with pytest.raises(sn.UnsafeName) as info:
        sn.check_job_name(name)
    assert str(info.value).startswith("invalid job name: ") and "/" not in info.value.reason


def test_job_names_accepted():
    for name in ("WordCount@6b0:5464e:dc072", "a", "x" * 186, "a-b_c@d:e"):
        assert sn.check_job_name(name) == name


def test_prefix_stage_host_rules():
    assert sn.check_job_prefix("p" * sn.JOB_PREFIX_MAX)
    with pytest.raises(sn.UnsafeName):
        sn.check_job_prefix("p" * (sn.JOB_PREFIX_MAX + 1))
    for ok in ("map", "reduce_shuffle", "stage.1", "Étape 2", "split words/now", ".."):
        assert sn.check_stage_name(ok) == ok  # free text: file names use file_safe()
    for bad in ("", "a\0b", "a\nb", "s" * 129, "\ud800"):
        with pytest.raises(sn.UnsafeName):
            sn.check_stage_name(bad)
    assert sn.file_safe("../split words/now") == ".._split_words_now"
    for ok in ("localhost", "127.0.0.2", "node-01.example.com", "_n"):
        assert sn.check_host_name(ok) == ok
    for bad in ("", "..", ".hidden", "a/b", "a..b", "-x", "h" * 254, "a b", "\udcff"):
        with pytest.raises(sn.UnsafeName):
            sn.check_host_name(bad)


def test_ddfs_name_limits():
    assert sn.valid_name("x" * 511) and not sn.valid_name("x" * 512)
    assert sn.valid_name("x" * 200, sn.STORED_NAME_MAX)
    assert not sn.valid_name("x" * 201, sn.STORED_NAME_MAX)
    assert sn.check_object_id_length("b" * 200 + "$6a4-1e240-9fbf1")
    with pytest.raises(sn.UnsafeName):
        sn.check_object_id_length("b" * 255)


@pytest.mark.parametrize(
    "path", ["", "/", "/etc/passwd", "../x", "a/../../x", "a/..", "a\0b", "a\\b", "./", "x" * 256]
)
def test_relative_paths_refused(path):
    with pytest.raises(sn.UnsafeName):
        sn.relative_parts(path)


def test_relative_paths_normalised():
    assert sn.relative_parts("./a//b/./c") == ["a", "b", "c"]


def test_containment_follows_symlinks(tmp_path):
    root = tmp_path / "root"
    (root / "in").mkdir(parents=True)
    (tmp_path / "out").mkdir()
    os.symlink(tmp_path / "out", root / "link")
    os.symlink(root / "in", root / "inner-link")
    assert sn.resolve(str(root), "in/file") == str((root / "in" / "file").resolve())
    with pytest.raises(sn.UnsafeName, match="outside its data directory"):
        sn.resolve(str(root), "link/file")
    with pytest.raises(sn.UnsafeName, match="outside"):
        sn.inside(str(root), str(root))  # the root itself is not a file below it
    # deletions: no symlink anywhere below the root, even one that stays inside
    assert sn.no_symlink_below(str(root), str(root / "in" / "x"))
    with pytest.raises(sn.UnsafeName, match="symbolic link"):
        sn.no_symlink_below(str(root), str(root / "inner-link" / "x"))
