"""docs/settings.md is generated from disco/settings.py and cannot drift (issue 12.6)."""

from __future__ import annotations

import os
import re

from disco import settingsdoc
from disco.settings import DiscoSettings

PACKAGE = os.path.dirname(os.path.abspath(settingsdoc.__file__))


def _sources() -> str:
    texts = []
    for root, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith(".py") and name not in ("settings.py", "settingsdoc.py"):
                with open(os.path.join(root, name), encoding="utf-8") as f:
                    texts.append(f.read())
    return "\n".join(texts)


def test_committed_document_is_the_generated_one() -> None:
    with open(settingsdoc.doc_path(), encoding="utf-8") as f:
        committed = f.read()
    assert committed == settingsdoc.render(), "run: python -m disco.settingsdoc --write"


def test_every_setting_is_documented_with_its_default_and_readers() -> None:
    assert set(DiscoSettings.about) == set(DiscoSettings.defaults)
    text = settingsdoc.render()
    for key, default in DiscoSettings.defaults.items():
        readers, what = DiscoSettings.about[key]
        assert readers == "-" or set(readers.split(", ")) <= {
            "master",
            "node",
            "worker",
            "client",
            "tests",
        }
        assert what
        assert "| `%s` | `%s` | %s |" % (key, default.replace("|", "\\|"), readers) in text
    names = re.findall(r"^\| `((?:DISCO|DDFS)_[A-Z_]+)` \| `", text, re.M)
    assert {n for n in DiscoSettings.defaults if n.startswith(("DISCO_", "DDFS_"))} <= set(names)


def test_read_by_nothing_means_no_code_reads_it() -> None:
    code = _sources()
    for key, (readers, _what) in DiscoSettings.about.items():
        used = re.search(r"\b%s\b" % key, code) is not None
        assert used == (readers != "-"), key


def test_main_prints_and_writes(tmp_path, monkeypatch, capsys) -> None:
    assert settingsdoc.main([]) == 0
    assert capsys.readouterr().out == settingsdoc.render()
    target = tmp_path / "settings.md"
    monkeypatch.setattr(settingsdoc, "doc_path", lambda: str(target))
    assert settingsdoc.main(["--write"]) == 0
    assert target.read_text() == settingsdoc.render()
