#!/usr/bin/env python3
"""Inner join of two CSV files on their first column (the extended tutorial's job).

    python examples/simple_innerjoin.py LEFT.csv RIGHT.csv

Bound methods of a Job subclass as map and reduce, a csv `map_reader`, two partitions and
the on-disk sort of the reduce input (`sort = True`, keys must be bytes).  The job class is
imported from this module by name (the 0.5 idiom) so the nodes can import it.
"""

import os
import sys

from disco.core import Job, result_iterator


class CsvInnerJoiner(Job):
    partitions = 2
    sort = True

    @staticmethod
    def map_reader(fd, size, url, params):
        import csv
        import io

        text = io.TextIOWrapper(fd, encoding="utf-8") if hasattr(fd, "readable") else fd
        reader = csv.reader(line.decode("utf-8") if isinstance(line, bytes) else line for line in text)
        next(reader, None)  # header
        for row in reader:
            if row:
                yield url, row

    def map(self, entry, params):
        url, row = entry
        yield row[0].encode("utf-8"), (url, row[1:])

    def reduce(self, rows_iter, out, params):
        from itertools import groupby

        # params is the URL of the left table; rows arrive sorted by key (sort = True)
        for key, group in groupby(rows_iter, lambda kv: kv[0]):
            rows = [v for _, v in group]
            left = [r for src, r in rows if src == params]
            right = [r for src, r in rows if src != params]
            for lrow in left:
                for rrow in right:
                    out.add(key, lrow + rrow)


def main(argv=None):
    from disco.embedded import default_master

    argv = sys.argv[1:] if argv is None else argv
    here = os.path.dirname(os.path.abspath(__file__))
    left, right = argv[:2] if len(argv) >= 2 else (
        os.path.join(here, "data", "people.csv"),
        os.path.join(here, "data", "languages.csv"),
    )
    from simple_innerjoin import CsvInnerJoiner as Importable

    left_url = "file://" + os.path.abspath(left)
    right_url = "file://" + os.path.abspath(right)
    job = Importable(master=default_master()).run(input=[left_url, right_url], params=left_url)
    for key, row in sorted(result_iterator(job.wait())):
        print(key.decode(), ",".join(row))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
