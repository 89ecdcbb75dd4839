#!/usr/bin/env python3
"""Pipeline word count with the intermediate records in each node's Redis
(Disco's util/wordcount_redis_pipe.py).

    python examples/wordcount_redis_pipe.py [INPUT ...] [--redis HOST:PORT] [--labels L] [--top N]

* stage ``map`` (``group_node``: one task per node) sends each word to one of ``L``
  labels; its ``output_chain`` is ``redis_inter_stream_out`` bound with
  ``functools.partial`` to ``node_db``, which picks database ``<label>`` of the Redis
  server of the node the task runs on (the job parameter ``redis`` maps node names to
  ``host:port``).  The task's output files only hold that database's URL.
* stage ``reduce`` (``group_label``, ``combine=True``) reads the records back with
  ``input_chain = [task_input_stream, redis_inter_stream_in]`` and sums them.

Needs the ``redis`` package (``pip install disco-mapreduce[redis]``).  Without
``--redis`` the script starts a throw-away ``redis-server`` (Debian package
``redis-server``) for the run.  Default input: the text bundled in examples/data/.
"""

import argparse
import functools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from disco.core import Job, result_iterator
from disco.embedded import default_master
from disco.schemes.scheme_redis import redis_inter_stream_in, redis_inter_stream_out
from disco.worker.pipeline.worker import Stage, Worker
from disco.worker.task_io import task_input_stream

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, "data", "declaration.txt")


def node_db(partition, url, params):
    """The Redis database for one output: database ``<label>`` on this node's server."""
    from disco.worker import active_task

    label = int(url.rsplit("-", 1)[1])  # outputs are named <stage>-<group>-<label>
    return "redis://%s:%d" % (params["redis"][active_task.host], label)


def map_words(interface, state, label, inp):
    import zlib

    labels = state
    for line in inp:
        line = line.encode() if isinstance(line, str) else line  # raw:// inputs are str
        for word in line.split():
            interface.output(zlib.crc32(word) % labels).add(word, 1)


def sum_words(interface, state, label, inp):
    counts = {}
    for word, count in inp:
        counts[word] = counts.get(word, 0) + int(count)
    out = interface.output(label)
    for word in sorted(counts):
        out.add(word, counts[word])


def labels_of(interface, params):
    return params["labels"]


def word_count(inputs, redis_by_node, labels=4, master=None):
    """``{word: count}`` of ``inputs``; ``redis_by_node`` maps node names to host:port."""
    out_chain = [functools.partial(redis_inter_stream_out, redis_server=node_db)]
    job = Job(master=master or default_master(), worker=Worker())
    job.run(
        input=inputs,
        params={"redis": redis_by_node, "labels": labels},
        pipeline=[
            ("group_node", Stage("map", init=labels_of, process=map_words, output_chain=out_chain)),
            (
                "group_label",
                Stage(
                    "reduce",
                    process=sum_words,
                    combine=True,
                    input_chain=[task_input_stream, redis_inter_stream_in],
                ),
            ),
        ],
    )
    return dict(result_iterator(job.wait()))


def start_redis(folder):
    """A throw-away redis-server on a free loopback port: ``(process, "127.0.0.1:port")``."""
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("no redis-server on PATH: install it (Debian: redis-server) or give --redis")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [exe, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", folder]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, "127.0.0.1:%d" % port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("redis-server did not start")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="*", default=[DEFAULT_INPUT])
    ap.add_argument("--redis", help="HOST:PORT of the Redis server used by every node")
    ap.add_argument("--labels", type=int, default=4, help="labels (Redis databases 0..L-1)")
    ap.add_argument("--top", type=int, default=0, help="print only the N most frequent words")
    args = ap.parse_args(argv)
    urls = [u if "://" in u else "file://" + os.path.abspath(u) for u in args.inputs]
    master = default_master()
    with tempfile.TemporaryDirectory() as folder:
        proc, redis = (None, args.redis) if args.redis else start_redis(folder)
        try:
            nodes = {host: redis for host in Job(master=master).disco.nodeinfo()}
            counts = word_count(urls, nodes, args.labels, master)
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    for word, count in ranked[: args.top or None]:
        print("%s %d" % (word.decode("utf-8", "replace"), count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
