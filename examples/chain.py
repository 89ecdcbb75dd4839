#!/usr/bin/env python3
"""Chained jobs: each job's results are the next job's input (`chain_reader`).

    python examples/chain.py [N]

Every job adds one to each value; after N jobs every counter equals N.
"""

import sys

from disco.core import Job, result_iterator
from disco.worker.classic.func import chain_reader


class FirstJob(Job):
    input = ["raw://0", "raw://0"]

    @staticmethod
    def map(entry, params):
        yield int(entry), 1


class ChainJob(Job):
    map_reader = staticmethod(chain_reader)

    @staticmethod
    def map(kv, params):
        key, value = kv
        yield key, value + 1


def run_chain(n=3, master=None):
    from disco.embedded import default_master

    master = master or default_master()
    from chain import ChainJob as Next
    from chain import FirstJob as First

    job = First(master=master).run()
    for _ in range(n - 1):
        job = Next(master=master).run(input=job.wait())
    return sorted(result_iterator(job.wait()))


if __name__ == "__main__":
    import os

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    print(run_chain(int(sys.argv[1]) if len(sys.argv) > 1 else 3))
