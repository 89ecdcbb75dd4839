#!/usr/bin/env python3
"""Chunk text inputs into DDFS from inside a job (Disco's util/chunk.py).

    python examples/chunk_job.py [--tag data:chunks] [INPUT_URL_OR_PATH ...]

Each map task gets one input URL, not its contents: the job's ``map_input_stream``
passes the URL itself on as the task's only record.  The map function chunks that URL
into the tag with ``DDFS(Task.master).chunk`` (``Task`` is injected into job functions,
library.md 10.4) and emits ``(url, number of blobs)``.  The script then reads the tag
back with ``result_iterator`` and prints how many lines each input gave.  Default
inputs: the files bundled in examples/data/.
"""

import argparse
import os
import sys

from disco.core import Job, result_iterator
from disco.embedded import default_master

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def url_stream(fd, size, url, params):
    """An input stream that does not open the input: its only record is the URL."""
    return [url], 1, url


def chunk_map(url, params):
    from disco.ddfs import DDFS

    _tags, blobs = DDFS(Task.master).chunk(params["tag"], [url], chunk_size=1024)  # noqa: F821
    yield url, len(blobs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--tag", default="data:chunks")
    args = ap.parse_args(argv)
    paths = args.inputs or [os.path.join(DATA, n) for n in sorted(os.listdir(DATA))]
    urls = [p if "://" in p else "file://" + os.path.abspath(p) for p in paths]
    master = default_master()
    job = Job(master=master).run(
        input=urls,
        map=chunk_map,
        map_input_stream=[url_stream],
        map_reader=None,
        params={"tag": args.tag},
        partitions=None,
    )
    for url, blobs in sorted(result_iterator(job.wait())):
        print("%s: %d blobs" % (url, blobs))
    lines = sum(1 for _line in result_iterator(["tag://%s" % args.tag], ddfs=master))
    print("lines in tag://%s: %d" % (args.tag, lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
