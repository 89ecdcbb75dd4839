"""The process that serves an embedded master reads that node's results as files
(issue 13, sort target): ``disco.locality.local_path`` maps a ``disco://``/``dir://`` URL
of its node to the file under its DISCO_DATA, so ``copy_url`` and ``result_iterator``
do not go through the master's own HTTP server; once stopped, nothing is mapped."""

from __future__ import annotations

import io
import os

from disco.core import Job, result_iterator
from disco.locality import local_path
from disco.util import read_index
from disco.worker import copy_url


def twice(line, params):
    yield line, 2


def test_results_of_the_embedded_node_are_local_files(master) -> None:
    job = Job(master=master.url).run(input=["raw://one", "raw://two"], map=twice)
    results = job.wait()
    urls = [entry[1] for index in results for entry in read_index(index)]
    assert urls and all(url.startswith("disco://") for url in urls)
    data = os.path.realpath(str(master.root))
    for url in urls:
        path = local_path(url)
        assert path is not None and os.path.realpath(path).startswith(data)
        out = io.BytesIO()
        copy_url(url, out)
        with open(path, "rb") as f:
            assert out.getvalue() == f.read()
    assert sorted(result_iterator(results)) == [("one", 2), ("two", 2)]
    master.stop()
    assert [local_path(url) for url in urls] == [None] * len(urls)
