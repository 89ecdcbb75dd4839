"""``disco.func``: the names of ``disco.worker.classic.func`` (library.md 8)."""

from disco.worker.classic.func import *  # noqa: F403
from disco.worker.classic.func import STUB_NAMES, __all__  # noqa: F401
