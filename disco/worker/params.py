"""``Params``: the attribute bag passed as ``params`` to job functions (library.md 9.2)."""

from __future__ import annotations

from typing import Any


class Params:
    """Attribute bag passed as ``params`` to job functions (library.md 9.2).

    Pickled with the job, so each task gets its own copy: changes made in one task
    are not seen by other tasks.
    """

    # Pickled with the job: named by its public 0.5 path (job packs stay byte-identical).
    __module__ = "disco.worker"

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)

    def __repr__(self) -> str:
        items = ", ".join("%s=%r" % kv for kv in sorted(self.__dict__.items()))
        return "Params(%s)" % items
