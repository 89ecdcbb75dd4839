"""The cyclic garbage collector around imports and the embedded start (issue 13, tiny job).

Importing modules (or starting a master) allocates tens of thousands of objects and frees
almost none of them.  The collector, triggered every 700 allocations, walks them again and
again only to find them alive: about 40 young and 3 middle-generation collections, 5 ms of
CPU, while a script imports ``disco.core``, ``Job`` and ``disco.embedded`` (as much again
during the embedded start).  Switching it off is not enough: the first collection after
would walk them all at once, then again from the middle generation.

``paused()`` switches it off for the imports of a module; on the way out the tracked
objects are moved into the oldest generation (``age_young_objects``: ``freeze`` then
``unfreeze``, which moves the lists without walking them) and the collector is switched
back on if it was on.  Nothing stays frozen; garbage in cycles among the aged objects is
collected at the next full collection.  docs/decisions.md, "No cyclic garbage collection
while modules are imported and while an EmbeddedMaster starts".
"""

from __future__ import annotations

import gc

# no `typing` here: this module is imported before the pause it provides starts, and
# importing typing (contextlib, functools, ...) then could run a middle-generation
# collection in a fresh interpreter


def age_young_objects() -> None:
    """Move every object the collector tracks into its oldest generation, without a walk.

    Skipped when the program froze objects itself (``unfreeze`` would release them)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


def keep_young_objects() -> None:
    """Leave every young object the collector tracks out of its young collections, for
    objects a program keeps to its end (the records of a sort task).

    Aged as ``age_young_objects`` ages them, or, when the program froze objects itself
    (a task forked from the zygote, which froze its own), frozen with them: ``freeze``
    moves the young objects to the frozen ones, without a walk and without releasing
    those.  Otherwise the first young collection after would walk them all (the tuples
    of 500 k records: about 40 ms).  Frozen objects are still freed by reference
    counting; only garbage in cycles among them waits for the process's end."""
    if gc.get_freeze_count() == 0:
        age_young_objects()
    else:
        gc.freeze()


class paused:  # noqa: N801 - used like a function: ``with paused():``
    """Context manager: no cyclic collection inside; on exit the objects are aged
    (``age_young_objects``), or kept (``keep_young_objects``) with ``keep=True``, and
    the collector is restored."""

    def __init__(self, keep: bool = False) -> None:
        self._keep = keep

    def __enter__(self) -> None:
        self._was_on = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self._keep:
            keep_young_objects()
        else:
            age_young_objects()
        if self._was_on:
            gc.enable()
