#!/usr/bin/env python3
"""k-means clustering as pipeline jobs (Disco's datamining/kclustering_pipeline.py).

    python examples/kclustering_pipeline.py [--points N] [--k K] [--iterations I]

Each iteration is one pipeline job over the points:

* stage ``assign`` (``split``): ``init`` reads the current centers from ``params`` (a
  dict) into the task state; ``process`` adds each point to the sum of its nearest
  center; ``done`` writes ``(center, (coordinate sums, count))`` once per center;
* stage ``update`` (``group_all``, ``combine``): adds up the partial sums of all tasks
  and writes the new centers.

The job's ``pipeline`` is an instance attribute.  The points are generated (seeded)
into a few files read as ``file://`` inputs; the script prints the final centers.
"""

import argparse
import os
import random
import sys
import tempfile

from disco.core import Job, result_iterator
from disco.embedded import default_master
from disco.worker.pipeline.worker import Stage, Worker


def init_centers(interface, params):
    return {"centers": params["centers"], "sums": {}}


def assign_points(interface, state, label, inp):
    centers = state["centers"]
    sums = state["sums"]
    for line in inp:
        point = [float(x) for x in line.split()]
        best = min(
            range(len(centers)),
            key=lambda c: sum((p - q) ** 2 for p, q in zip(point, centers[c], strict=True)),
        )
        total, count = sums.get(best, ([0.0] * len(point), 0))
        sums[best] = ([t + p for t, p in zip(total, point, strict=True)], count + 1)


def write_sums(interface, state):
    out = interface.output(0)
    for center, (total, count) in sorted(state["sums"].items()):
        out.add(center, (total, count))


def update_centers(interface, state, label, inp):
    sums = {}
    for center, (total, count) in inp:
        old_total, old_count = sums.get(center, ([0.0] * len(total), 0))
        sums[center] = ([a + b for a, b in zip(old_total, total, strict=True)], old_count + count)
    out = interface.output(0)
    for center, (total, count) in sorted(sums.items()):
        out.add(center, [t / count for t in total])


def make_points(n, k, dim=2, seed=42):
    """``n`` points around ``k`` seeded random centers."""
    rng = random.Random(seed)
    middles = [[rng.uniform(-50, 50) for _ in range(dim)] for _ in range(k)]
    return [[rng.gauss(m, 3.0) for m in rng.choice(middles)] for _ in range(n)]


def write_inputs(points, folder, files=4):
    paths = []
    for i in range(files):
        path = os.path.join(folder, "points-%d.txt" % i)
        with open(path, "w") as f:
            for point in points[i::files]:
                f.write(" ".join("%r" % x for x in point) + "\n")
        paths.append("file://" + path)
    return paths


def kmeans(inputs, centers, iterations, master=None):
    """Centers after ``iterations`` pipeline jobs, starting from ``centers``."""
    master = master or default_master()
    for _ in range(iterations):
        job = Job(master=master, worker=Worker())
        job.pipeline = [
            ("split", Stage("assign", init=init_centers, process=assign_points, done=write_sums)),
            ("group_all", Stage("update", process=update_centers, combine=True)),
        ]
        job.run(input=inputs, params={"centers": centers})
        new = dict(result_iterator(job.wait()))
        # a center that lost every point keeps its place
        centers = [new.get(c, centers[c]) for c in range(len(centers))]
        job.purge()
    return centers


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=2000)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=5)
    args = ap.parse_args(argv)
    points = make_points(args.points, args.k)
    with tempfile.TemporaryDirectory() as folder:
        inputs = write_inputs(points, folder)
        centers = kmeans(inputs, [list(p) for p in points[: args.k]], args.iterations)
    for center in centers:
        print(" ".join("%.6f" % x for x in center))
    return 0


if __name__ == "__main__":
    sys.exit(main())
