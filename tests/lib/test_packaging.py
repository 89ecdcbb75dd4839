"""pyproject.toml installs without warnings (issue 12.7): the SPDX license string, a
setuptools that understands it, and no package-data pattern naming a missing folder."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import tomllib

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_license_is_an_spdx_string_and_setuptools_knows_it() -> None:
    project = _pyproject()
    assert project["project"]["license"] == "BSD-3-Clause"
    requires = project["build-system"]["requires"]
    setuptools = next(r for r in requires if r.startswith("setuptools"))
    assert setuptools == "setuptools>=77"  # the first release taking the string form


def test_every_package_data_pattern_matches_a_file() -> None:
    data = _pyproject()["tool"]["setuptools"]["package-data"]
    for package, patterns in data.items():
        for pattern in patterns:
            found = glob.glob(os.path.join(ROOT, package, pattern), recursive=True)
            assert [p for p in found if os.path.isfile(p)], "%s/%s matches nothing" % (
                package,
                pattern,
            )


@pytest.mark.slow
def test_building_the_package_prints_no_warning(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(tmp_path), ROOT],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # not the package's: pip's notes about this machine's package indexes, and
    # setuptools' note that PYTHONDONTWRITEBYTECODE is set
    lines = [
        line
        for line in (proc.stdout + proc.stderr).splitlines()
        if "WARNING: Location" not in line and "byte-compiling is disabled" not in line
    ]
    noisy = [line for line in lines if "warning" in line.lower() or "deprecat" in line.lower()]
    assert noisy == []
    assert glob.glob(str(tmp_path / "disco_mapreduce-*.whl"))
