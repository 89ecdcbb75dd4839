"""``disco.util``'s URL helpers take bytes as well as str (issue 11.5)."""

from __future__ import annotations

from typing import Any

from disco import util
from disco.core import Job, result_iterator
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker


def test_url_helpers_accept_bytes_and_give_str() -> None:
    for url in ("http://user:tok@host:8080/a/b", "disco://node1/disco/node1/ab/Job@1/x"):
        assert util.urlsplit(url.encode()) == util.urlsplit(url)
        assert util.schemesplit(url.encode()) == util.schemesplit(url)
        assert util.urlresolve(url.encode()) == util.urlresolve(url)
        assert util.urltoken(url.encode()) == util.urltoken(url)
        assert util.proxy_url(url.encode(), proxy="") == url
        util.assert_url(url.encode())
    assert util.jobname(b"disco://n/disco/n/ab/Job@1/x") == "Job@1"
    assert util.localize(b"ddfs/vol0/blob", ddfs_data="/d") == "/d/vol0/blob"
    assert util.netloc.parse(b"h:1") == ("h", "1")
    assert util.ispartitioned(b"dir://h/x") and util.ispartitioned([b"dir://h/x"]) == 1
    assert util.inputexpand(b"raw://a") == ["raw://a"]
    assert util.urlsplit(b"tag://data:x") == ("tag", util.netloc(), "data:x")
    assert util.url_text(b"caf\xc3\xa9 \xff") == "café \udcff"  # undecodable bytes kept


def split_urls(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for record in inp:
        scheme, netloc, path = util.urlsplit(record)
        resolved = util.urlresolve(record)
        interface.output(0).add(str(netloc), (type(record).__name__, scheme, path, resolved))


def test_a_pipeline_stage_calls_urlsplit_on_raw_records(master: Any, tmp_path: Any) -> None:
    """Records read from files (or HTTP) are bytes: here each file holds one URL."""
    inputs = []
    for i, url in enumerate(["http://example.invalid:81/a/b", "disco://node2/x/y"]):
        (tmp_path / str(i)).write_bytes(url.encode())
        inputs.append("file://%s" % (tmp_path / str(i)))
    pipeline = [("split", Stage("split_urls", process=split_urls))]
    job = Job(master=master.url, worker=PipelineWorker()).run(input=inputs, pipeline=pipeline)
    got = dict(result_iterator(job.wait()))
    port = util.urlsplit("disco://node2/x")[1].port
    assert got == {
        "example.invalid:81": ("bytes", "http", "a/b", "http://example.invalid:81/a/b"),
        "node2:%s" % port: ("bytes", "http", "x/y", "http://node2:%s/x/y" % port),
    }
