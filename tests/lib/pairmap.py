"""A map function for the jobs of tests that check what a fresh interpreter imports
(``tests.conftest`` imports aiohttp and the master; this module imports nothing)."""


def pair_map(entry, params):
    yield entry, 1
