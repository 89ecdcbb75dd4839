#!/usr/bin/env python3
"""CPU per record of the sort job's two stages, in one process (no master, no workers).

    python benchmarks/sort_stages.py INPUT [--records N] [--labels L] [--repeat R]

Runs ``examples/pipeline_sort.py``'s stages (``pipeline_sort.pipeline()``) on the first N
records of INPUT through their own stream chains (``StreamCombiner``, as the pipeline
worker opens them; a stage without a chain gets the worker's default one):
``partition`` writes each label through stage ``partition``'s output chain, then each
label is read back through stage ``sort``'s input chain (``SerialInput``), sorted
(``util.disk_sort``, what ``sort=True`` does) and written by the stage's ``process``
through its output chain.  Prints the ``time.process_time()`` of each part in ns per
record (the sort stage split into read + sort, and write), the best of ``--repeat``
runs, and the deflate in use (``disco.compression.IMPLEMENTATION``; ``DISCO_DEFLATE=zlib``
for the standard library; it matters only to chains of the record format).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import pipeline_sort  # noqa: E402

from disco import compression, util  # noqa: E402
from disco.worker import SerialInput  # noqa: E402
from disco.worker.pipeline.stage import DiscoTask, Stage  # noqa: E402
from disco.worker.task_io import StreamCombiner  # noqa: E402


def run_once(inp: str, nbytes: int, labels: int, folder: str) -> dict[str, float]:
    (_, part_stage), (_, sort_stage) = pipeline_sort.pipeline()
    part_out = part_stage.output_chain or Stage.default_output_chain
    sort_in = sort_stage.input_chain or Stage.interior_input_chain
    sort_out = sort_stage.output_chain or Stage.default_output_chain
    outputs: dict[int, StreamCombiner] = {}

    def output(label: int) -> object:
        if label not in outputs:
            path = os.path.join(folder, "part-%d" % label)
            outputs[label] = StreamCombiner(path, part_out, None)
        return outputs[label].fds[-1]

    interface = DiscoTask(output=output)
    params = {"bounds": pipeline_sort.sample_bounds(inp, labels)}
    url = "raw://%s:0:%d" % (inp, nbytes)
    t0 = time.process_time()
    state = part_stage.init(interface, params)
    blocks = StreamCombiner(url, part_stage.input_chain, params)
    part_stage.process(interface, state, 0, iter(blocks))
    for out in outputs.values():
        out.close()
    t1 = time.process_time()
    read_sort = write = 0.0
    for label in sorted(outputs):
        path = os.path.join(folder, "part-%d" % label)
        s0 = time.process_time()
        records = SerialInput([path], open=lambda u: StreamCombiner(u, sort_in, params))
        ordered = util.disk_sort(None, iter(records), os.path.join(folder, "sort.dl"))
        it = iter(ordered)  # reads and sorts
        s1 = time.process_time()
        sink = StreamCombiner(os.path.join(folder, "sorted-%d" % label), sort_out, params)
        sink_interface = DiscoTask(output=lambda label, sink=sink: sink.fds[-1])
        sort_stage.process(sink_interface, None, label, it)
        sink.close()
        s2 = time.process_time()
        read_sort += s1 - s0
        write += s2 - s1
    return {"partition": t1 - t0, "read_sort": read_sort, "write": write}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--labels", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    nbytes = min(os.path.getsize(args.input), args.records * 100)
    count = nbytes // 100
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as folder:
            for part, seconds in run_once(args.input, nbytes, args.labels, folder).items():
                best[part] = min(best.get(part, seconds), seconds)
    figures = {part: round(seconds / count * 1e9) for part, seconds in best.items()}
    figures["both_stages"] = sum(figures.values())
    figures = {"deflate": compression.IMPLEMENTATION, "records": count, "ns_per_record": figures}
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
