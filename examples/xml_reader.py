#!/usr/bin/env python3
"""Word count over the pages of an XML dump, chunked into DDFS with a custom reader
(Disco's util/xml_reader.py).

    python examples/xml_reader.py [INPUT_URL_OR_PATH] [--tag data:pages] [--top N]

``xml_reader`` is a reader (``(fd, size, url, params)`` -> records) that yields the text
of every ``<text>`` element of a MediaWiki-style dump.  Chunking with it, like
``ddfs chunk -R xml_reader.xml_reader data:pages pages.xml`` would, stores one record
per page; the job then reads the tag with ``map_reader=chain_reader`` and counts the
words of the pages.  Default input: examples/data/pages.xml.
"""

import argparse
import os
import sys

from count_words import reduce  # the tutorial's reduce (shipped with the job)

from disco.core import Job, result_iterator
from disco.ddfs import DDFS
from disco.embedded import default_master
from disco.worker.task_io import chain_reader

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "data", "pages.xml")


def xml_reader(fd, size, url, params):
    """The text of each ``<text>`` element (any XML namespace), one record per page."""
    import xml.etree.ElementTree as ET

    for _event, elem in ET.iterparse(fd):
        if elem.tag.rsplit("}", 1)[-1] == "text":
            yield elem.text or ""
            elem.clear()


def map(text, params):
    for word in text.lower().replace(".", " ").replace(";", " ").replace(",", " ").split():
        yield word, 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?", default=DEFAULT_INPUT)
    ap.add_argument("--tag", default="data:pages")
    ap.add_argument("--top", type=int, default=10)
    args = ap.parse_args(argv)
    url = args.input if "://" in args.input else "file://" + os.path.abspath(args.input)
    master = default_master()
    ddfs = DDFS(master)
    ddfs.delete(args.tag)
    ddfs.chunk(args.tag, [url], reader=xml_reader)
    pages = sum(1 for _ in result_iterator(["tag://%s" % args.tag], ddfs=master))
    print("%d pages in tag://%s" % (pages, args.tag))
    job = Job(master=master).run(
        input=["tag://%s" % args.tag], map=map, map_reader=chain_reader, reduce=reduce
    )
    counts = sorted(((c, w) for w, c in result_iterator(job.wait())), key=lambda x: (-x[0], x[1]))
    for count, word in counts[: args.top]:
        print("%-20s %d" % (word, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
