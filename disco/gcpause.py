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
from typing import Any


def age_young_objects() -> None:
    """Move every object the collector tracks into its oldest generation, without a walk.

    Skipped when the program froze objects itself (``unfreeze`` would release them)."""
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


class paused:  # noqa: N801 - used like a function: ``with paused():``
    """Context manager: no cyclic collection inside; on exit the objects are aged
    (``age_young_objects``) and the collector is restored."""

    def __enter__(self) -> None:
        self._was_on = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: Any) -> None:
        age_young_objects()
        if self._was_on:
            gc.enable()
