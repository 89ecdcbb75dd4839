#!/usr/bin/env python3
"""Monte-Carlo estimate of pi over generator inputs (`raw://` URLs carry the sample count).

    python examples/estimate_pi.py [TASKS] [SAMPLES_PER_TASK]
"""

import sys

from disco.core import Job, result_iterator


def map(entry, params):
    import random

    samples = int(entry)
    rng = random.Random()
    hits = 0
    for _ in range(samples):
        x, y = rng.random(), rng.random()
        if x * x + y * y <= 1.0:
            hits += 1
    yield "hits", (hits, samples)


def reduce(iter, params):
    hits = samples = 0
    for _, (h, n) in iter:
        hits += h
        samples += n
    yield "pi", 4.0 * hits / samples


def estimate(tasks=10, samples=20000, master=None):
    from disco.embedded import default_master

    job = Job(master=master or default_master()).run(
        input=["raw://%d" % samples] * tasks, map=map, reduce=reduce
    )
    return dict(result_iterator(job.wait()))["pi"]


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:3]]
    print("pi is about %.5f" % estimate(*args))
