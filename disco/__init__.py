"""Disco: a MapReduce framework (Python 3 rebuild, wire-compatible with Disco 0.5).

The package itself only defines the job pack version constants, as 0.5 did.
Scripts import from :mod:`disco.core`, :mod:`disco.job` and friends.
"""

JOBPACK_VERSION1 = 0x0001
JOBPACK_VERSION2 = 0x0002

__version__ = "0.5.4"
