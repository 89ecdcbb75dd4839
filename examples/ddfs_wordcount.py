#!/usr/bin/env python3
"""The tutorial's word count over DDFS: chunk a text into a tag, count its words, save
the results under a tag.

    python examples/ddfs_wordcount.py [INPUT_URL_OR_PATH] [--tag data:bigtxt]
                                      [--chunk-size BYTES] [--top N]

Like ``ddfs chunk data:bigtxt ./bigfile.txt`` of the tutorial, the input is chunked into
blobs of Disco's record format (``DDFS.chunk``), so the job reads ``tag://data:bigtxt``
with ``map_reader=chain_reader``.  ``save_results=True`` makes the master store the
results under ``disco:results:<job>``: the job's result is that tag's URL, and
``result_iterator`` reads it.  Runs on the embedded master when none is configured.
"""

import argparse
import os
import sys

from count_words import map, reduce  # the tutorial's functions (shipped with the job)

from disco.core import Job, result_iterator
from disco.ddfs import DDFS
from disco.embedded import default_master
from disco.worker.task_io import chain_reader

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "data", "declaration.txt")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", default=DEFAULT_INPUT)
    ap.add_argument("--tag", default="data:bigtxt")
    ap.add_argument("--chunk-size", type=int, default=4096, help="bytes per chunk (blob)")
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    url = args.input if "://" in args.input else "file://" + os.path.abspath(args.input)
    master = default_master()
    ddfs = DDFS(master)
    ddfs.delete(args.tag)  # start from an empty tag
    _tag_urls, blobs = ddfs.chunk(args.tag, [url], chunk_size=args.chunk_size)
    print("chunked %s into %d blobs of tag %s" % (url, len(blobs), args.tag))
    job = Job(master=master).run(
        input=["tag://%s" % args.tag],
        map=map,
        map_reader=chain_reader,  # chunks hold records, not lines
        reduce=reduce,
        save_results=True,
    )
    results = job.wait(show=bool(os.environ.get("DISCO_EVENTS")))
    print("results saved in %s" % results[0])
    counts = sorted(
        ((count, word) for word, count in result_iterator(results)),
        key=lambda item: (-item[0], item[1]),
    )
    print("%-20s %s" % ("word", "count"))
    for count, word in counts[: args.top]:
        print("%-20s %d" % (word.decode("utf-8", "replace"), count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
