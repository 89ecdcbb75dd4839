#!/usr/bin/env python3
"""The canonical word count: the job a Disco user writes first (issue 13).

    python benchmarks/wordcount_canonical.py INPUT OUTPUT [--phases FILE]

INPUT is a file or a directory (every file in it is one ``file://`` input; ``run.py``
gives the corpus cut into 4 files with ``split -n l/4``).  The job is exactly the
tutorial's, with nothing tuned: ``map`` yields ``(word, 1)`` per word of each line
(default reader), a sum ``combiner``, ``reduce`` with ``kvgroup(sorted(iter))``,
``partitions=2``, on the embedded default master started inside this process.  The
client reads the results with ``result_iterator`` and writes ``word<TAB>count`` lines
sorted by word, the peers' format.
"""

import argparse
import json
import os
import sys
import time

from disco.core import Job, result_iterator


def map(line, params):
    for word in line.split():
        yield word, 1


def combiner(key, value, buf, done, params):
    if done:
        return buf.items()
    buf[key] = buf.get(key, 0) + value


def reduce(iter, params):
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)


def input_urls(path):
    """``file://`` URLs of ``path`` (a file) or of every file in it (a directory)."""
    path = os.path.abspath(path)
    if os.path.isdir(path):
        names = sorted(os.listdir(path))
        return ["file://" + os.path.join(path, n) for n in names]
    return ["file://" + path]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--phases", metavar="FILE", help="write the seconds of each phase as JSON")
    ap.add_argument("--master", help="master URL (default: the embedded default master)")
    args = ap.parse_args(argv)
    from harness import master_url

    t0 = time.perf_counter()
    master = master_url(args.master)
    t1 = time.perf_counter()
    job = Job(master=master).run(
        input=input_urls(args.input),
        map=map,
        combiner=combiner,
        reduce=reduce,
        partitions=2,
    )
    results = job.wait()
    t2 = time.perf_counter()
    counts = {}
    for word, count in result_iterator(results):
        if isinstance(word, bytes):  # the default reader gives bytes lines
            word = word.decode("utf-8")
        counts[word] = count
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines("%s\t%d\n" % (w, c) for w, c in sorted(counts.items()))
    t3 = time.perf_counter()
    if args.phases:
        with open(args.phases, "w") as f:
            json.dump({"master_s": t1 - t0, "job_s": t2 - t1, "read_write_s": t3 - t2}, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
