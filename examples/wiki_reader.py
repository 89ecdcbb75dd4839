#!/usr/bin/env python3
"""Pipeline word count with hash labels (Disco's util/wiki_reader.py, without DDFS).

    python examples/wiki_reader.py [INPUT_URL_OR_PATH ...] [--labels 128] [--top N]

Stage ``map`` (``split``) sends every word to one of ``--labels`` labels by a hash of
the word with ``interface.output(label)``; stage ``reduce`` (``group_label``) gets each
label's words as one key-sorted stream (``combine=True, sort=True``) and writes
``<count> <word>`` lines with ``plain_output_stream``.  The script reads those text
results back and prints the most frequent words.  The 0.5 example read a DDFS tag;
give any URLs or paths instead (default: the text bundled in examples/data/).
"""

import argparse
import os
import sys

from disco.core import Job, result_iterator
from disco.embedded import default_master
from disco.worker.pipeline.worker import Stage, Worker
from disco.worker.task_io import plain_output_stream, task_output_stream

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "data", "declaration.txt")


def map_words(interface, state, label, inp):
    import zlib

    labels = state
    for line in inp:
        for word in line.split():
            interface.output(zlib.crc32(word) % labels).add(word, 1)


def reduce_words(interface, state, label, inp):
    from disco.util import kvgroup

    out = interface.output(label)
    for word, counts in kvgroup(inp):
        out.add(sum(counts), word.decode("utf-8", "replace"))


def plain_reader(fd, size, url, params):
    """Reads the ``<len> <key> <len> <value>`` lines of ``plain_output_stream``."""
    for line in fd:
        _n, count, _m, word = line.decode("utf-8").rstrip("\n").split(" ", 3)
        yield word, int(count)


def labels_of(interface, params):
    return params["labels"]


def word_count(inputs, labels=128, master=None):
    """``{word: count}`` of the inputs, counted by a pipeline job with ``labels`` labels."""
    job = Job(master=master or default_master(), worker=Worker())
    job.run(
        input=inputs,
        params={"labels": labels},
        pipeline=[
            ("split", Stage("map", init=labels_of, process=map_words)),
            (
                "group_label",
                Stage(
                    "reduce",
                    process=reduce_words,
                    combine=True,
                    sort=True,
                    output_chain=[task_output_stream, plain_output_stream],
                ),
            ),
        ],
    )
    return dict(result_iterator(job.wait(), reader=plain_reader))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", default=[DEFAULT_INPUT])
    ap.add_argument("--labels", type=int, default=128)
    ap.add_argument("--top", type=int, default=20)
    args = ap.parse_args(argv)
    urls = [u if "://" in u else "file://" + os.path.abspath(u) for u in args.inputs]
    counts = word_count(urls, args.labels)
    for word, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: args.top]:
        print("%s %d" % (word, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
