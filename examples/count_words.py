#!/usr/bin/env python3
"""The Disco tutorial job: count the words of a text and print the most frequent.

    python examples/count_words.py [INPUT_URL_OR_PATH] [--top N]

With no master configured (no DISCO_MASTER, no `disco start`), the job runs on an
embedded master with a local node inside this process: nothing to install or start.
The default input is the text bundled in examples/data/.
"""

import argparse
import os
import sys

from disco.core import Job, result_iterator
from disco.embedded import default_master

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "data", "declaration.txt")


def map(line, params):
    for word in line.split():
        yield word, 1


def reduce(iter, params):
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", default=DEFAULT_INPUT)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    url = args.input
    if "://" not in url:
        url = "file://" + os.path.abspath(url)
    master = default_master()
    job = Job(master=master).run(input=[url], map=map, reduce=reduce)
    results = job.wait(show=bool(os.environ.get("DISCO_EVENTS")))
    counts = sorted(
        ((int(count), word) for word, count in result_iterator(results)),
        key=lambda item: (-item[0], item[1]),
    )
    print("%-20s %s" % ("word", "count"))
    for count, word in counts[: args.top]:
        word = word.decode("utf-8", "replace") if isinstance(word, bytes) else word
        print("%-20s %d" % (word, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
