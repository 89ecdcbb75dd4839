"""``disco.worker.classic.modutil``: the names of ``disco.worker.modutil`` (library.md 14)."""

from disco.worker.modutil import *  # noqa: F403
from disco.worker.modutil import __all__  # noqa: F401
