#!/usr/bin/env python3
"""Word count as a Job subclass (Disco 0.5 `examples/util/wordcount.py` style).

    disco run wordcount.WordCount file:///path/to/text.txt     (from this folder)
    python examples/wordcount.py [INPUT]                        (embedded master if none)
"""

import os
import sys

from disco.core import Job, result_iterator


class WordCount(Job):
    partitions = 2

    @staticmethod
    def map(line, params):
        for word in line.split():
            yield word, 1

    @staticmethod
    def reduce(iter, params):
        from disco.util import kvgroup

        for word, counts in kvgroup(sorted(iter)):
            yield word, sum(counts)


def main(argv=None):
    from disco.embedded import default_master

    argv = sys.argv[1:] if argv is None else argv
    here = os.path.dirname(os.path.abspath(__file__))
    url = argv[0] if argv else "file://" + os.path.join(here, "data", "declaration.txt")
    # Import the class from this module by name so that nodes can import it too.
    from wordcount import WordCount as Importable

    job = Importable(master=default_master()).run(input=[url])
    for word, count in sorted(result_iterator(job.wait())):
        print(word.decode() if isinstance(word, bytes) else word, count)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
