"""How long a failed task waits before it runs again (master-api.md 10.3, changed).

0.5 waited ``min(n, 60) + random(0..30)`` seconds before the n-th retry, so one killed
worker cost 8 to 35 s (more than many whole jobs).  Here the first retry runs at once
(within ``FIRST_MAX`` seconds) and later ones back off exponentially up to ``CAP``,
with jitter, so that a failure that keeps repeating does not spin.  Only failures a
retry can fix get here: permanent ones end the job (``disco.retryable``).  Pure: the
randomness is injected, like the coordinator's.
"""

from __future__ import annotations

import random

#: Upper bound of the first retry's delay (seconds).
FIRST_MAX = 0.5
#: Base of the backoff from the second retry on: BASE * 2**(n-2) (seconds).
BASE = 0.5
#: Longest wait before a retry (seconds).
CAP = 10.0


def retry_delay(failures: int, rng: random.Random) -> float:
    """Seconds to wait after the ``failures``-th failure (counted from 1), rounded to ms.

    1: uniform(0, 0.5); n >= 2: min(10, 0.5 * 2**(n-2)) * uniform(0.5, 1).
    """
    if failures <= 1:
        delay = rng.uniform(0.0, FIRST_MAX)
    else:
        delay = min(CAP, BASE * 2 ** min(failures - 2, 32)) * rng.uniform(0.5, 1.0)
    return round(delay, 3)
