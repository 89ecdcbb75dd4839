"""``disco test``: run Disco test modules against the configured master (library.md 18.2).

Test modules are ``unittest`` modules built on ``disco.test.TestCase``.  They are looked
up in a directory (``-d``; by default ``$DISCO_HOME/tests`` when it exists, else the
current directory) that is put first on ``sys.path``, so the jobs' functions are found
on the nodes too.  Names may be modules (``test_sort``) or tests inside them
(``test_sort.MemorySortTestCase``); without names every ``test_*.py`` of the directory
runs.  The ``disco test`` command checks that the master answers first.
"""

from __future__ import annotations

import os
import sys
import unittest
from typing import Any, TextIO

from disco.error import DiscoError


def test_directory(settings: Any, directory: str | None = None) -> str:
    """``directory``, else ``$DISCO_HOME/tests`` if it exists, else the current directory."""
    if directory:
        if not os.path.isdir(directory):
            raise DiscoError("Test directory %s does not exist" % directory)
        return os.path.abspath(directory)
    home_tests = os.path.join(str(settings["DISCO_HOME"]), "tests")
    return home_tests if os.path.isdir(home_tests) else os.getcwd()


def load(names: list[str], directory: str) -> unittest.TestSuite:
    """The tests named (or all ``test_*.py`` of ``directory``), with it on ``sys.path``."""
    if directory not in sys.path:
        sys.path.insert(0, directory)
    loader = unittest.TestLoader()
    if names:
        return loader.loadTestsFromNames(names)
    return loader.discover(directory, pattern="test_*.py", top_level_dir=directory)


def run(settings: Any, names: list[str], directory: str | None, stream: TextIO) -> bool:
    """Run the tests; ``True`` when they all passed."""
    from disco.test import TestRunner

    where = test_directory(settings, directory)
    suite = load(names, where)
    if suite.countTestCases() == 0:
        raise DiscoError(
            "No tests found in %s%s" % (where, " for " + " ".join(names) if names else "")
        )
    result = TestRunner(settings, stream=stream).run(suite)
    return result.wasSuccessful()
