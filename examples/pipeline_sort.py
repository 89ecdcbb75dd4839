#!/usr/bin/env python3
"""Sort a file of records by their first 10 bytes with a two-stage pipeline job.

    python examples/pipeline_sort.py INPUT OUTPUT [--splits N] [--labels L]

Like TeraSort: the client samples keys of INPUT to pick ``L - 1`` boundaries, and cuts
INPUT into ``N`` ranges of whole lines, given to the job as ``raw://<path>:<start>:<end>``
inputs (the file stays where it is, as with a local ``file://`` input).

* stage ``partition`` (``split``): reads its range (``input_chain``) in blocks of lines,
  sorts each block by key (so that each key range is one slice of it) and writes each
  slice's lines as they are, in one write, to the label of its key range
  (``output_chain`` with the example's line writer: ``add_lines``);
* stage ``sort`` (``group_label``, ``combine=True, sort=True``): reads each label's
  record lines with the example's input stream (``input_chain``), which gives them as
  ``(key, line)`` records, ``(line[:10], line)``; the framework sorts them by key
  (``sort=True``: its input is sorted runs, which Python's sort merges in far fewer
  steps than records in random order) and the stage writes the lines back
  (``output_chain`` with the same line writer, which takes the whole sorted stream in
  one ``add_all`` call).

So the records between the stages are plain lines, not the default record format
(pickled records in deflated hunks): a line ends at ``\\n`` only, and the input's last
line gets the newline it may lack, as ``LC_ALL=C sort`` gives it.

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
from disco.worker.task_io import task_input_stream, task_output_stream

KEY = 10


# -- job functions (shipped by value: builtins and local imports only) ------------------
def range_blocks(stream, size, url, params):
    """Input chain: ``raw://<path>:<start>:<end>`` -> lists of the lines of that range,
    8 MiB at a time (a block cut mid-line has the rest of that line added to its last
    line, not to the whole block: no copy of the block).  A line ends at ``\\n`` only
    (``bytes.splitlines`` also cuts at ``\\r``: used when the block has none), and the
    file's last line gets the newline it may lack (as GNU sort adds it)."""
    path, start, end = url[len("raw://") :].rsplit(":", 2)
    left = int(end) - int(start)
    with open(path, "rb") as f:
        f.seek(int(start))
        while left > 0:
            block = f.read(min(8 << 20, left))
            if not block:
                break
            left -= len(block)
            if b"\r" in block:
                lines = [line + b"\n" for line in block.split(b"\n")]
                last = lines.pop()[:-1]
                if last:
                    lines.append(last)
            else:
                lines = block.splitlines(keepends=True)
            del block
            if not lines[-1].endswith(b"\n"):
                tail = f.readline() if left > 0 else b""
                left -= len(tail)
                lines[-1] += tail if tail.endswith(b"\n") else tail + b"\n"
            yield lines


def partition(interface, state, label, inp):
    import bisect
    import operator

    bounds, key = state, operator.itemgetter(slice(0, 10))
    # one output per key range: the example's line writer (``line_output_stream``)
    outputs = [interface.output(part) for part in range(len(bounds) + 1)]
    for records in inp:
        # sorted by key (a C loop), a block's records of one key range are one slice,
        # and stage ``sort`` gets sorted runs, which it merges rather than sorts
        records.sort(key=key)
        cuts = [bisect.bisect_left(records, bound, key=key) for bound in bounds]
        for out, start, end in zip(outputs, [0, *cuts], [*cuts, len(records)], strict=True):
            # the slice's lines as they are, one write (no Python code per record)
            out.add_lines(records[start:end])


def boundaries(interface, params):
    return params["bounds"]


def write_sorted(interface, state, label, inp):
    # the line writer below takes them all at once (C loops instead of a call per record)
    interface.output(label).add_all(inp)


class LineWriter:
    """Output stream object writing record lines.

    A record of this job is ``(key, line)``: the line whole (its newline included), its
    key the line's first 10 bytes.  ``add(key, line)`` writes the line;
    ``add_all(records)`` writes the lines of an iterable of such records, joined a batch
    at a time without Python code per record; ``add_lines(lines)`` writes lines.
    """

    def __init__(self, stream):
        self.write = stream.write

    def add(self, key, line):
        self.write(line)

    def add_all(self, records):
        import itertools
        import operator

        records, line = iter(records), operator.itemgetter(1)
        while True:
            batch = b"".join(map(line, itertools.islice(records, 8192)))
            if not batch:
                break
            self.write(batch)

    def add_lines(self, lines):
        self.write(b"".join(lines))

    def close(self):
        pass


def line_output_stream(stream, partition, url, params):
    return LineWriter(stream)


def line_records(stream, size, url, params):
    """Input stream (after ``task_input_stream``): the ``(key, line)`` records of a file
    of record lines, as ``LineWriter`` wrote them: ``(line[:10], line)``.

    Read 8 MiB at a time; a line ends at ``\\n`` only (each line the partition wrote
    ends with one), the part of a line cut by a block's end is put before the next
    block's first line.  The records come from one C iterator over each block's
    ``zip``: no Python frame resumed per record."""
    import itertools
    import operator

    key = operator.itemgetter(slice(0, 10))

    def blocks():
        rest = b""
        while True:
            block = stream.read(8 << 20)
            if not block:
                break
            if b"\r" in block:
                lines = [line + b"\n" for line in block.split(b"\n")]
                last = lines.pop()[:-1]
                if last:
                    lines.append(last)
            else:
                lines = block.splitlines(keepends=True)
            if rest:
                lines[0] = rest + lines[0]
            rest = b"" if block.endswith(b"\n") else lines.pop()
            del block
            yield zip(map(key, lines), lines, strict=True)
        if rest:
            yield [(rest[:10], rest)]

    return itertools.chain.from_iterable(blocks())


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


def pipeline():
    """The job's ``pipeline``: stage ``partition`` then stage ``sort``."""
    return [
        (
            "split",
            Stage(
                "partition",
                init=boundaries,
                process=partition,
                input_chain=[range_blocks],
                output_chain=[task_output_stream, line_output_stream],
            ),
        ),
        (
            "group_label",
            Stage(
                "sort",
                process=write_sorted,
                input_chain=[task_input_stream, line_records],
                combine=True,
                sort=True,
                output_chain=[task_output_stream, line_output_stream],
            ),
        ),
    ]


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
    job.run(input=inputs, params={"bounds": sample_bounds(inp, labels)}, pipeline=pipeline())
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
