#!/usr/bin/env python3
"""Distributed grep: print the input lines that match a regular expression.

    disco run grep.Grep -P params PATTERN INPUT...            (from this folder)
    python examples/grep.py PATTERN [INPUT...]                (embedded master if none)
"""

import os
import sys

from disco.core import Job, result_iterator


class Grep(Job):
    """A map-only job: the reader keeps matching lines; `params` is the pattern."""

    partitions = None

    @staticmethod
    def map_reader(fd, size, url, params):
        import re

        pattern = re.compile(params.encode() if isinstance(params, str) else params)
        for line in fd:
            if pattern.search(line):
                yield line

    @staticmethod
    def map(line, params):
        yield line.rstrip(b"\n"), b""


def main(argv=None):
    from disco.embedded import default_master

    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    pattern, inputs = argv[0], argv[1:]
    if not inputs:
        here = os.path.dirname(os.path.abspath(__file__))
        inputs = [os.path.join(here, "data", "declaration.txt")]
    inputs = [i if "://" in i else "file://" + os.path.abspath(i) for i in inputs]
    from grep import Grep as Importable

    job = Importable(master=default_master()).run(input=inputs, params=pattern)
    for line, _ in result_iterator(job.wait()):
        print(line.decode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
