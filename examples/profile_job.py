#!/usr/bin/env python3
"""Profile a job's tasks (Disco's faq/profile.py).

    python examples/profile_job.py [INPUT_URL_OR_PATH] [--mode map|reduce] [--lines N]

With ``profile=True`` every task runs under ``cProfile``; its statistics are stored as
the job's out-of-band result ``profile-<task>`` in DDFS.  ``job.profile_stats(mode)``
merges them into one ``pstats.Stats`` (``mode``: ``map``, ``reduce`` or all tasks), as
``disco pstats JOBNAME`` does on the command line.  The job is the tutorial's word
count (``count_words.py``).
"""

import argparse
import os
import sys

from count_words import map, reduce  # the tutorial's functions (shipped with the job)

from disco.core import Job
from disco.embedded import default_master

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "data", "declaration.txt")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", default=DEFAULT_INPUT)
    ap.add_argument("--mode", default="", choices=["", "map", "reduce"])
    ap.add_argument("--lines", type=int, default=10, help="functions to print")
    args = ap.parse_args(argv)
    url = args.input if "://" in args.input else "file://" + os.path.abspath(args.input)
    job = Job(master=default_master()).run(input=[url], map=map, reduce=reduce, profile=True)
    job.wait()
    stats = job.profile_stats(args.mode, stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(args.lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
