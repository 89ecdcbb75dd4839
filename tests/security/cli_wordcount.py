"""The word count job ``disco run tests.security.cli_wordcount.WordCount`` runs."""

from __future__ import annotations

from disco.job import Job


class WordCount(Job):
    @staticmethod
    def map(line, params):
        line = line.decode() if isinstance(line, bytes) else line
        for word in line.split():
            yield word, 1

    @staticmethod
    def reduce(iter, params):
        from disco.util import kvgroup

        for word, counts in kvgroup(sorted(iter)):
            yield word, sum(counts)
