#!/usr/bin/env python3
"""Sort a file of records by their first 10 bytes with a two-stage pipeline job.

    python examples/pipeline_sort.py INPUT OUTPUT [--splits N] [--labels L]

Like TeraSort: the client samples keys of INPUT to pick ``L - 1`` boundaries, and cuts
INPUT into ``N`` ranges of whole lines, given to the job as ``raw://<path>:<start>:<end>``
inputs (the file stays where it is, as with a local ``file://`` input).

* stage ``partition`` (``split``): reads its range (``input_chain``) in blocks of lines,
  sorts each block by key (so that each key range is one slice of it) and writes each
  slice's records to the label of its key range: ``interface.output(label).add_all(pairs)``,
  ``add(key, rest)`` for each record, fixed-size records pickled a batch at a time;
* stage ``sort`` (``group_label``, ``combine=True, sort=True``): gets each label's
  records as one stream sorted by key (its input is sorted runs, which Python's sort
  merges in far fewer steps than records in random order) and writes them back as
  plain lines (``output_chain`` with the example's raw record writer, which takes the
  whole sorted stream in one ``add_all`` call).

The client concatenates the outputs in label order into OUTPUT.  Without arguments the
script sorts 20,000 generated records and checks the result with ``sorted()``.
"""

import argparse
import os
import random
import sys
import tempfile

from disco.util import read_index
from disco.worker import copy_url
from disco.worker.pipeline.worker import Stage, Worker
from disco.worker.task_io import task_output_stream

KEY = 10


# -- job functions (shipped by value: builtins and local imports only) ------------------
def range_blocks(stream, size, url, params):
    """Input chain: ``raw://<path>:<start>:<end>`` -> lists of the lines of that range,
    8 MiB at a time (a block cut mid-line has the rest of that line added to its last
    line, not to the whole block: no copy of the block)."""
    path, start, end = url[len("raw://") :].rsplit(":", 2)
    left = int(end) - int(start)
    with open(path, "rb") as f:
        f.seek(int(start))
        while left > 0:
            block = f.read(min(8 << 20, left))
            if not block:
                break
            left -= len(block)
            lines = block.splitlines(keepends=True)
            del block
            if left > 0 and not lines[-1].endswith(b"\n"):
                tail = f.readline()
                left -= len(tail)
                lines[-1] += tail
            yield lines


def partition(interface, state, label, inp):
    import bisect
    import operator

    bounds, key = state, operator.itemgetter(slice(0, 10))
    value = operator.itemgetter(slice(10, None))
    # one output per key range; its add_all(pairs) is add(key, value) for each pair
    outputs = [interface.output(part) for part in range(len(bounds) + 1)]
    for records in inp:
        # sorted by key (a C loop), a block's records of one key range are one slice,
        # and stage ``sort`` gets sorted runs, which it merges rather than sorts
        records.sort(key=key)
        cuts = [bisect.bisect_left(records, bound, key=key) for bound in bounds]
        for out, start, end in zip(outputs, [0, *cuts], [*cuts, len(records)], strict=True):
            part = records[start:end]
            # the (key, value) pairs made and written without Python code per record
            out.add_all(zip(map(key, part), map(value, part), strict=True))


def boundaries(interface, params):
    return params["bounds"]


def write_sorted(interface, state, label, inp):
    # the record writer below takes them all at once (C loops instead of a call per record)
    interface.output(label).add_all(inp)


class RecordWriter:
    """Output stream object writing ``key + value`` bytes: the record line again.

    ``add(key, value)`` writes one record; ``add_all(records)`` writes an iterable of
    ``(key, value)`` pairs, joined a batch at a time without Python code per record.
    """

    def __init__(self, stream):
        self.write = stream.write

    def add(self, key, value):
        self.write(key + value)

    def add_all(self, records):
        import itertools

        records = iter(records)
        while True:
            batch = b"".join(itertools.chain.from_iterable(itertools.islice(records, 8192)))
            if not batch:
                break
            self.write(batch)

    def close(self):
        pass


def record_output_stream(stream, partition, url, params):
    return RecordWriter(stream)


# -- client side ----------------------------------------------------------------------------
def line_ranges(path, n):
    """``n`` (or fewer) ``(start, end)`` byte ranges of ``path`` made of whole lines."""
    size = os.path.getsize(path)
    cuts = [0]
    with open(path, "rb") as f:
        for i in range(1, n):
            f.seek(max(cuts[-1], size * i // n))
            f.readline()
            if cuts[-1] < f.tell() < size:
                cuts.append(f.tell())
    cuts.append(size)
    return [(a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def sample_bounds(path, labels, samples_per_label=1000, seed=1):
    """``labels - 1`` sorted keys cutting a sample of the file's keys into equal parts.

    Each sample is the key of the first whole line after a random offset, read with one
    small ``pread`` (a buffered file read 8 KiB per seek: 32 MB for 4,000 samples)."""
    size = os.path.getsize(path)
    rng = random.Random(seed)
    keys = []
    with open(path, "rb") as f:
        fd = f.fileno()
        for _ in range(labels * samples_per_label if size else 0):
            key = _key_after(f, fd, rng.randrange(size))
            if key:
                keys.append(key)
    keys.sort()
    if not keys:
        return []
    return sorted({keys[len(keys) * i // labels] for i in range(1, labels)})


def _key_after(f, fd, offset, chunk=512):
    """The first ``KEY`` bytes (at most, up to its newline) of the line after the one
    holding ``offset`` (``b""`` at the end of the file): ``f.seek(offset)``, one
    ``readline()`` skipped, the next one's start, from one ``pread`` when it holds them."""
    data = os.pread(fd, chunk, offset)
    start = data.find(b"\n") + 1
    if start and (start + KEY <= len(data) or len(data) < chunk):
        key = data[start : start + KEY]
        end = key.find(b"\n")
        return key if end < 0 else key[: end + 1]
    if not start and len(data) < chunk:
        return b""  # the last line: no line after it
    f.seek(offset)  # a line longer than the chunk
    f.readline()
    return f.readline()[:KEY]


def sort_file(inp, out, splits=4, labels=4, master=None):
    """Sort the lines of ``inp`` by their first 10 bytes into ``out``; the job name."""
    # Imported here, not with the module: the job's warm process imports this module
    # to unpickle the stage functions, before its first task (disco.core and
    # disco.embedded, which the tasks never use, cost it about 40 ms there).
    from disco.core import Job
    from disco.embedded import default_master

    inp = os.path.abspath(inp)
    inputs = ["raw://%s:%d:%d" % (inp, a, b) for a, b in line_ranges(inp, splits)]
    job = Job(master=master or default_master(), worker=Worker())
    job.run(
        input=inputs,
        params={"bounds": sample_bounds(inp, labels)},
        pipeline=[
            (
                "split",
                Stage("partition", init=boundaries, process=partition, input_chain=[range_blocks]),
            ),
            (
                "group_label",
                Stage(
                    "sort",
                    process=write_sorted,
                    combine=True,
                    sort=True,
                    output_chain=[task_output_stream, record_output_stream],
                ),
            ),
        ],
    )
    parts = sorted(entry[:2] for index in job.wait() for entry in read_index(index))
    with open(out, "wb") as f:
        for _label, url in parts:
            copy_url(url, f)
    return job.name


def make_records(path, n, seed=7):
    """``n`` records: a 10-character printable key, two spaces, the record number."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(n):
            key = bytes(rng.randrange(33, 127) for _ in range(KEY))
            f.write(key + b"  %032X\n" % i)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", nargs="?")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--splits", type=int, default=4)
    ap.add_argument("--labels", type=int, default=4)
    args = ap.parse_args(argv)
    if args.input and args.output:
        sort_file(args.input, args.output, args.splits, args.labels)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        inp, out = os.path.join(folder, "records"), os.path.join(folder, "sorted")
        make_records(inp, 20000)
        sort_file(inp, out, args.splits, args.labels)
        with open(inp, "rb") as f, open(out, "rb") as g:
            ok = sorted(f.readlines(), key=lambda r: r[:KEY]) == g.readlines()
    print("sorted 20000 records: %s" % ("OK" if ok else "WRONG ORDER"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
