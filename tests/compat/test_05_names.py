"""Every public name of Disco 0.5 that library.md lists imports from its 0.5 module path,
and the names issue 11.11 found missing work (real jobs on a real master)."""

from __future__ import annotations

import functools
import importlib
import io
import json
import marshal
import os
import sys
from typing import Any

import pytest

from disco import comm, dPickle, fileutils
from disco.core import Disco, Job, result_iterator
from disco.error import DataError
from disco.eventmonitor import EventMonitor
from disco.worker import InputIter, ReplicaIter
from disco.worker.classic import external
from disco.worker.classic.worker import Worker as ClassicWorker
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker
from tests.compat.names_05 import MEMBERS_05, NAMES_05

from ..lib.test_modutil_misc import make_program


@pytest.mark.parametrize("module", sorted(NAMES_05))
def test_every_public_name_of_the_0_5_module_imports(module: str) -> None:
    namespace: dict[str, Any] = {}
    exec("from %s import %s" % (module, ", ".join(NAMES_05[module])), namespace)  # noqa: S102
    assert all(name in namespace for name in NAMES_05[module])


@pytest.mark.parametrize("path", sorted(MEMBERS_05))
def test_members_of_0_5_classes_exist(path: str) -> None:
    module, cls = path.rsplit(".", 1)
    owner = getattr(importlib.import_module(module), cls)
    assert [m for m in MEMBERS_05[path] if not hasattr(owner, m)] == []


# -- disco.worker.classic.worker helpers, in a real job ----------------------------------
def helpers_map(line: str, params: Any) -> Any:
    from disco.worker.classic.worker import (
        put,
        this_host,
        this_inputs,
        this_master,
        this_name,
        this_partition,
    )

    put("seen-" + line, line.encode())
    yield "name", this_name()
    yield "master", this_master()
    yield "host", this_host()
    yield "partition", this_partition()
    yield "inputs", this_inputs()


def helpers_reduce(iter: Any, params: Any) -> Any:
    from disco.worker.classic.worker import get

    yield from iter
    yield "oob", get("seen-x").decode()


def test_classic_worker_helpers_in_a_job(master: Any) -> None:
    job = Job(master=master.url).run(input=["raw://x"], map=helpers_map, reduce=helpers_reduce)
    got = dict(result_iterator(job.wait()))
    assert got["name"] == job.name and got["oob"] == "x"
    assert got["master"].startswith("http://") and got["host"] and got["partition"] == 0
    assert got["inputs"] == [["raw://x"]]


def test_helpers_outside_a_task_say_why() -> None:
    from disco.worker.classic.worker import this_name

    with pytest.raises(Exception, match="only inside a task"):
        this_name()


# -- classic Worker extension points --------------------------------------------------------
class ReversingWorker(ClassicWorker):
    """Overrides 0.5's extension points: ``sort`` (descending, in memory),
    ``reduce_input`` and ``shuffle_group_node`` (each leaves a message)."""

    def sort(self, input: Any, task: Any) -> Any:
        return sorted(input, reverse=True) if self["sort"] else input

    def reduce_input(self, task: Any, params: Any) -> Any:
        self.send("MSG", "custom reduce_input")
        return super().reduce_input(task, params)

    def shuffle_group_node(self, task: Any, params: Any, inputs: list[Any]) -> None:
        self.send("MSG", "custom shuffle of %d inputs" % len(inputs))
        super().shuffle_group_node(task, params, inputs)

    def opener(self, mode: str, direction: str, params: Any) -> Any:
        if mode == "map" and direction == "in":
            self.send("MSG", "custom opener")
        return super().opener(mode, direction, params)


def word_map(line: str, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def in_order_reduce(iter: Any, params: Any) -> Any:
    yield "order", [k for k, _ in iter]


def messages(master: Any, job: Any) -> list[str]:
    return [event[2] for _offset, event in Disco(master.url).events(job.name)]


def test_classic_worker_subclass_extension_points(master: Any) -> None:
    job = Job(master=master.url, worker=ReversingWorker()).run(
        input=["raw://b a c"], map=word_map, reduce=in_order_reduce, sort=True
    )
    assert dict(result_iterator(job.wait())) == {"order": ["c", "b", "a"]}
    text = "\n".join(messages(master, job))
    for message in ("custom reduce_input", "custom shuffle of 1 inputs", "custom opener"):
        assert message in text


# -- pipeline Worker extension points -------------------------------------------------------
class UpperWorker(PipelineWorker):
    """``make_interface`` upper-cases keys; ``sort`` orders descending; the input map
    and run_stage pass through ``labelexpand`` of the base class."""

    def make_interface(self, task: Any, stage: Any, params: Any) -> Any:
        base = super().make_interface(task, stage, params)

        class Upper:
            def __init__(self, out: Any) -> None:
                self.out = out

            def add(self, k: Any, v: Any) -> None:
                self.out.add(k.upper(), v)

        return type(base)(output=lambda label=0: Upper(base.output(label)))

    def sort(self, input: Any, task: Any) -> Any:
        return iter(sorted(input, reverse=True))

    def prepare_input_map(self, task: Any, stage: Any, params: Any) -> Any:
        input_map = super().prepare_input_map(task, stage, params)
        assert all(isinstance(label, int) for label in input_map)
        return input_map

    def run_stage(self, task: Any, stage: Any, params: Any) -> None:
        self.send("MSG", "custom run_stage %s" % stage.name)
        super().run_stage(task, stage, params)


def split_words(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for line in inp:
        for word in line.split():
            interface.output(0).add(word, 1)


def keep_order(interface: Any, state: Any, label: Any, inp: Any) -> None:
    interface.output(0).add("order", ",".join(k for k, _ in inp))


def test_pipeline_worker_subclass_extension_points(master: Any) -> None:
    pipeline = [
        ("split", Stage("words", process=split_words)),
        ("group_all", Stage("order", process=keep_order, combine=True, sort=True)),
    ]
    job = Job(master=master.url, worker=UpperWorker()).run(
        input=["raw://b a", "raw://c"], pipeline=pipeline
    )
    assert dict(result_iterator(job.wait())) == {"ORDER": "C,B,A"}
    assert "custom run_stage order" in "\n".join(messages(master, job))


# -- iterators -------------------------------------------------------------------------------
def test_next_on_replica_and_input_iterators() -> None:
    replicas = ReplicaIter(["raw://a", "raw://b"])
    assert iter(replicas) is replicas
    got = {next(replicas), replicas.next()}
    assert got == {"raw://a", "raw://b"}
    with pytest.raises(StopIteration):
        next(replicas)
    records = InputIter("raw://hello")
    assert iter(records) is records and next(records) == b"hello"
    with pytest.raises(StopIteration):
        records.next()


# -- disco.comm -----------------------------------------------------------------------------
def test_comm_status_helpers_range_and_uris(tmp_path) -> None:
    assert comm.issuccessful(200) and comm.issuccessful("204") and not comm.issuccessful(302)
    assert comm.isredirection(301) and not comm.isredirection(200)
    assert comm.isunavailable(503) and not comm.isunavailable(500)
    assert comm.range_header((10, 19)) == {"Range": "bytes=10-19"}
    assert comm.range_header(5) == comm.range_header((5,)) == {"Range": "bytes=5-"}
    assert comm.range_header(()) == {}
    assert comm.resolveuri("http://h:1/a/b", "/c/d") == "http://h:1/c/d"
    assert comm.resolveuri("http://h:1/a", "b") == "http://h:1/a/b"
    assert comm.BUFFER_SIZE == 1024**2
    path = tmp_path / "body"
    path.write_bytes(b"0123456789")
    for source in (str(path), io.BytesIO(b"0123456789")):
        body = comm.FileSource(source)
        assert len(body) == 10 and body.read() == b"0123456789"
        read = body.read
        assert read(4) == b"0123" and read() == b"456789"


def test_comm_range_header_against_a_real_data_server(master: Any) -> None:
    job = Job(master=master.url).run(input=["raw://abcdef"], map=word_map)
    url = comm.resolveuri(master.url, "/disco/ctrl/nodeinfo")
    assert comm.issuccessful(comm.request("GET", url).status)
    ((result,),) = job.wait()
    from disco.util import urlresolve

    index = comm.download(urlresolve(result))
    data_url = urlresolve(index.split()[1].decode())
    whole = comm.download(data_url)
    part = comm.download(data_url, headers=comm.range_header((2, 5)))
    assert part == whole[2:6]


# -- disco.fileutils -------------------------------------------------------------------------
def test_fileutils_files_raise_if_empty_get_valid_path(tmp_path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "a").write_bytes(b"x")
    (tmp_path / "d" / "e" / "b").write_bytes(b"")
    assert sorted(fileutils.files(str(tmp_path / "d"))) == [
        str(tmp_path / "d" / "a"),
        str(tmp_path / "d" / "e" / "b"),
    ]
    assert list(fileutils.files(str(tmp_path / "d" / "a"))) == [str(tmp_path / "d" / "a")]
    fileutils.raise_if_empty(str(tmp_path / "d" / "a"))
    with pytest.raises(DataError, match="is empty"):
        fileutils.raise_if_empty(str(tmp_path / "d" / "e" / "b"))
    with pytest.raises(DataError, match="cannot be read"):
        fileutils.raise_if_empty(str(tmp_path / "missing"))
    os.symlink(tmp_path / "d", tmp_path / "link")
    assert fileutils.get_valid_path(str(tmp_path / "link" / "a")) == os.path.realpath(
        tmp_path / "d" / "a"
    )
    with pytest.raises(DataError, match="does not exist"):
        fileutils.get_valid_path(str(tmp_path / "nope"))


# -- disco.dPickle ---------------------------------------------------------------------------
def scale(x: int, factor: int = 3) -> int:
    return x * factor


def test_dpickle_is_std_unfunc_unpartial() -> None:
    assert dPickle.is_std(json) and dPickle.is_std(os)
    assert not dPickle.is_std(dPickle) and not dPickle.is_std(sys.modules[__name__])
    rebuilt = dPickle.unfunc(marshal.dumps((scale.__code__, scale.__defaults__)))
    assert rebuilt(2) == 6 and rebuilt.__globals__ == {"__builtins__": __builtins__}
    partial = dPickle.unpartial(dPickle.dumps((scale, (5,), {"factor": 2})))
    assert isinstance(partial, functools.partial) and partial() == 10


# -- disco.worker.classic.external ----------------------------------------------------------
def test_external_helpers_talk_to_a_real_program(tmp_path, capsys) -> None:
    import struct

    assert (
        external.pack_kv((b"k", b"vv"))
        == struct.pack("=I", 1) + b"k" + struct.pack("=I", 2) + b"vv"
    )
    assert external.pack_kv(b"e") == struct.pack("=I", 0) + struct.pack("=I", 1) + b"e"
    program = make_program(tmp_path)
    proc = external.prepare(program, None, str(tmp_path / "ext.map"))
    try:
        assert list(external.communicate(iter([b"x y"]), oneshot=True)) == [
            (b"x", b"1"),
            (b"y", b"1"),
            (b"params", b""),
        ]
        assert external.map(b"z", None) == [(b"z", b"1"), (b"params", b"")]
        proc._write(external.pack_kv(b"w"))
        assert proc._read_u32() == 2 and external.unpack_kv() == (b"w", b"1")
        assert external.unpack_kv() == (b"params", b"")
    finally:
        external.close()
    external.prepare(program, None, str(tmp_path / "ext.reduce"))
    try:
        pairs = [(b"a", b"1"), (b"b", b"2"), (b"a", b"3")]
        assert list(external.reduce(iter(pairs), None)) == [(b"a", b"4"), (b"b", b"2")]
    finally:
        external.close()
    capsys.readouterr()
    external.parse_message("**<MSG> hello there\n")
    external.parse_message(b"plain line\n")
    assert capsys.readouterr().err == "hello there\nplain line\n"
    with pytest.raises(external.ExternalError, match="it broke"):
        external.parse_message("**<ERR> it broke\n")


# -- EventMonitor -----------------------------------------------------------------------------
class Handle:
    def __init__(self, disco: Disco, name: str) -> None:
        self.name, self.disco = name, disco

    def events(self, offset: int = 0) -> Any:
        return self.disco.events(self.name, offset=offset)

    def jobinfo(self) -> Any:
        return self.disco.jobinfo(self.name)


def test_event_monitor_events_stats_status_log_events(master: Any) -> None:
    job = Job(master=master.url).run(input=["raw://a", "raw://b"], map=word_map)
    job.wait()
    out = io.StringIO()
    monitor = EventMonitor(Handle(Disco(master.url), job.name), format="nocolor", handle=out)
    events = list(monitor.events)
    assert events and all(len(event) == 3 for _offset, event in events)
    assert monitor.stats[0] == "map_shuffle" and monitor.stats[4] == 1
    assert monitor.status == (
        "Status: [map_shuffle] 0 pending, 0 waiting, 0 running, 1 done, 0 failed"
    )
    monitor.log_events()
    assert monitor.offset == events[-1][0]
    assert len(out.getvalue().splitlines()) == len(events)
    assert list(monitor.events) == []
