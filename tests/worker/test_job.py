"""Job.run builds and submits the job pack of library.md 3.1 / 10.2.

A small aiohttp server in the test stands in for the master's HTTP endpoint: it records
the POSTed pack and serves index files for ``dir://`` inputs.
"""

from __future__ import annotations

import asyncio
import io
import os
import pickle
import stat
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from disco import JOBPACK_VERSION1
from disco.error import DiscoError
from disco.job import Job, JobPack, SimpleJob, pythonpath
from disco.worker import LAUNCHER, Params
from disco.worker.classic.func import chain_reader, sum_combiner
from disco.worker.classic.worker import Worker


class FakeMaster:
    """Records job packs POSTed to /disco/job/new; serves ``files`` by path."""

    def __init__(self) -> None:
        self.packs: list[bytes] = []
        self.files: dict[str, bytes] = {}
        self.results: dict[str, Any] = {}
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        assert self.ready.wait(5), "fake master did not start"

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_post("/disco/job/new", self._new)
        app.router.add_post("/disco/ctrl/get_results", self._results)
        app.router.add_get("/{path:.*}", self._file)
        self.runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = "http://127.0.0.1:%d" % self.port
        self.ready.set()
        self.loop.run_forever()

    async def _new(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.packs.append(body)
        prefix = JobPack.load(io.BytesIO(body)).jobdict["prefix"]
        return web.json_response(["ok", "%s@5:6:%d" % (prefix, len(self.packs))])

    async def _results(self, request: web.Request) -> web.Response:
        _timeout, names = await request.json()
        return web.json_response([[n, self.results.get(n, ["unknown job", []])] for n in names])

    async def _file(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if path not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[path])

    def last(self) -> JobPack:
        return JobPack.load(io.BytesIO(self.packs[-1]))

    def close(self) -> None:
        async def stop() -> None:
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def fake_master(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMaster]:
    m = FakeMaster()
    monkeypatch.setenv("DISCO_PORT", str(m.port))
    monkeypatch.setenv("DISCO_MASTER", m.url)
    try:
        yield m
    finally:
        m.close()


def fun_map(entry: Any, params: Any) -> Any:
    yield entry, 1


def fun_reduce(iter: Any, params: Any) -> Any:
    yield from iter


class Configured(Job):
    partitions = 3
    map = staticmethod(fun_map)
    scheduler = {"max_cores": 2}


# -- jobdict: every row of library.md 10.3 -----------------------------------------------------
@pytest.mark.parametrize(
    "jobargs, expect",
    [
        ({}, {"map?": False, "reduce?": False, "nr_reduces": 1}),
        ({"map": fun_map}, {"map?": True, "reduce?": False, "nr_reduces": 1}),
        ({"map": fun_map, "partitions": None}, {"map?": True, "nr_reduces": 1}),
        ({"map": fun_map, "partitions": 4}, {"map?": True, "nr_reduces": 4}),
        ({"map": fun_map, "reduce": fun_reduce}, {"map?": True, "reduce?": True, "nr_reduces": 1}),
        (
            {"map": fun_map, "reduce": fun_reduce, "partitions": 5, "reduce_shuffle": True},
            {"map?": True, "reduce?": True, "nr_reduces": 5, "reduce_shuffle?": True},
        ),
        ({"reduce": fun_reduce}, {"map?": False, "reduce?": True, "nr_reduces": 1}),
        (
            {"reduce": fun_reduce, "reduce_shuffle": True},
            {"reduce?": True, "nr_reduces": 1, "reduce_shuffle?": True},
        ),
    ],
)
def test_jobdict_stage_flags(fake_master: FakeMaster, jobargs: dict, expect: dict) -> None:
    job = Job(master=fake_master.url).run(
        input=["raw://a", ["http://x/1", "http://y/1"]], **jobargs
    )
    jobdict = fake_master.last().jobdict
    for key, value in expect.items():
        assert jobdict[key] == value, key
    assert jobdict.get("reduce_shuffle?", False) == bool(jobargs.get("reduce_shuffle"))
    assert jobdict["input"] == ["raw://a", ["http://x/1", "http://y/1"]]
    assert jobdict["worker"] == "bin/disco-worker"
    assert jobdict["prefix"] == "Job"
    assert job.name == "Job@5:6:%d" % len(fake_master.packs)


def test_reduce_only_over_partitioned_results(fake_master: FakeMaster) -> None:
    # nr_reduces = 1 + the largest label of the index files; dir:// inputs stay as they are.
    fake_master.files["disco/h/ab/J/.disco/map-0-1.results"] = (
        b"0 disco://127.0.0.1/disco/a 10\n3 disco://127.0.0.1/disco/b 20\n"
    )
    index = "dir://127.0.0.1/disco/h/ab/J/.disco/map-0-1.results"
    Job(master=fake_master.url).run(input=[index], reduce=fun_reduce)
    jobdict = fake_master.last().jobdict
    assert jobdict["nr_reduces"] == 4
    assert jobdict["input"] == [index]
    # With a map, the index is expanded into its data URLs.
    Job(master=fake_master.url).run(input=[index], map=fun_map)
    assert fake_master.last().jobdict["input"] == [
        ["disco://127.0.0.1/disco/a"],
        ["disco://127.0.0.1/disco/b"],
    ]


def test_jobdict_common_keys(fake_master: FakeMaster) -> None:
    Configured(master=fake_master.url).run(input=["raw://a"], save=True, owner="ann@host")
    jobdict = fake_master.last().jobdict
    assert jobdict["prefix"] == "Configured"
    assert jobdict["scheduler"] == {"max_cores": 2}
    assert jobdict["save_results"] is True
    assert jobdict["save_info"] == "ddfs"
    assert jobdict["owner"] == "ann@host"
    assert jobdict["nr_reduces"] == 3
    Job(name="Custom", master=fake_master.url).run(input=["raw://a"], save_info="hdfs,n:1,u,/d")
    jobdict = fake_master.last().jobdict
    assert jobdict["prefix"] == "Custom"
    assert jobdict["save_info"] == "hdfs,n:1,u,/d"
    assert jobdict["save_results"] is False
    assert "@" in jobdict["owner"]


def test_input_must_be_a_list(fake_master: FakeMaster) -> None:
    with pytest.raises(DiscoError, match="not a list of input locations.*raw://a"):
        Job(master=fake_master.url).run(input="raw://a", map=fun_map)
    assert fake_master.packs == []


def test_unknown_jobargs_are_ignored(fake_master: FakeMaster) -> None:
    Job(master=fake_master.url).run(input=["raw://a"], map=fun_map, nr_reduces=7, clean=True)
    assert fake_master.last().jobdict["nr_reduces"] == 1


# -- the other parts of the pack --------------------------------------------------------------
def test_jobenvs_pythonpath() -> None:
    assert pythonpath(["", "/a/b", "rel"]) == "lib::a/b:rel"
    envs = Worker().jobenvs(Job(master="http://127.0.0.1:1"))
    assert envs["LD_LIBRARY_PATH"] == "lib"
    assert envs["PYTHONPATH"].startswith("lib:")
    # nodes must not depend on this machine's directories: user modules are shipped
    assert not any(os.path.isabs(p) for p in envs["PYTHONPATH"].split(":"))
    assert envs["DISCO_JOB_PYTHON"] == "%d.%d" % sys.version_info[:2]


def test_jobhome_contents(fake_master: FakeMaster, tmp_path: Any) -> None:
    helper = tmp_path / "helper_mod.py"
    helper.write_text("X = 1\n")
    data = tmp_path / "table.txt"
    data.write_text("t\n")
    Configured(master=fake_master.url).run(
        input=["raw://a"],
        required_files=[str(data)],
        required_modules=[("helper_mod", str(helper)), "math"],
    )
    pack = fake_master.last()
    zf = zipfile.ZipFile(io.BytesIO(pack.jobhome))
    names = set(zf.namelist())
    assert zf.read("bin/disco-worker") == LAUNCHER
    assert stat.S_IMODE(zf.getinfo("bin/disco-worker").external_attr >> 16) == 0o755
    assert os.path.abspath(__file__).lstrip("/") in names  # the job's module
    # Disco's own classic worker is installed on the nodes: not in the job home
    worker_src = sys.modules[Worker.__module__].__file__
    assert worker_src is not None and worker_src.lstrip("/") not in names
    # this test module is a user module: shipped under lib/ at its package path
    assert "lib/tests/worker/test_job.py" in names and "lib/tests/__init__.py" in names
    assert zf.read("lib/table.txt") == b"t\n"
    assert zf.read(str(helper).lstrip("/")) == b"X = 1\n"
    assert not any(n.startswith(("disco/", "clx/")) for n in names)
    # required_files as a dict of contents
    Job(master=fake_master.url).run(
        input=["raw://a"], map=fun_map, required_files={"a.so": b"\x7f"}
    )
    zf = zipfile.ZipFile(io.BytesIO(fake_master.last().jobhome))
    assert zf.read("lib/a.so") == b"\x7f"


def test_required_modules_found_and_stored(fake_master: FakeMaster) -> None:
    job = Job(master=fake_master.url)
    assert job.worker["required_modules"] is None

    def uses_modules(entry: Any, params: Any) -> Any:
        yield os.path.basename(entry), time.time()

    job.run(input=["raw://a"], map=uses_modules)
    found = job.worker["required_modules"]
    assert "time" in found and "os" in found
    job_obj, _jobargs = pickle.loads(fake_master.last().jobdata)
    assert job_obj.worker["required_modules"] == found


def test_jobdata_holds_job_and_jobargs(fake_master: FakeMaster) -> None:
    params = Params(n=3, f=lambda x: x + 1)
    job = Job(master=fake_master.url).run(input=["raw://a"], map=fun_map, params=params)
    job_obj, jobargs = pickle.loads(fake_master.last().jobdata)
    assert type(job_obj) is Job
    assert job_obj.name == "Job"  # pickled before the master named it
    assert "_disco" not in job_obj.__dict__ or job_obj.__dict__["_disco"] is None
    assert jobargs["map"] is fun_map
    assert jobargs["params"].n == 3 and jobargs["params"].f(1) == 2
    assert job.name.startswith("Job@")
    assert fake_master.last().version == JOBPACK_VERSION1


def test_simple_job_jobdict_is_complete(fake_master: FakeMaster) -> None:
    class Simple(SimpleJob):
        def map(self, worker: Any, task: Any, **jobargs: Any) -> None:
            pass

    Simple(master=fake_master.url).run(input=["raw://a"])
    jobdict = fake_master.last().jobdict
    assert jobdict["worker"] == "bin/disco-worker"
    assert jobdict["input"] == ["raw://a"]
    assert (jobdict["map?"], jobdict["reduce?"], jobdict["nr_reduces"]) == (True, False, 1)


def test_submission_error(fake_master: FakeMaster) -> None:
    with pytest.raises(DiscoError):
        Job(master=fake_master.url + "/nowhere").run(input=["raw://a"], map=fun_map)


def test_run_is_fast(fake_master: FakeMaster) -> None:
    Job(master=fake_master.url).run(input=["raw://a"], map=fun_map, reduce=fun_reduce)
    start = time.perf_counter()
    for _ in range(5):
        Job(master=fake_master.url).run(input=["raw://a"], map=fun_map, reduce=fun_reduce)
    per_job = (time.perf_counter() - start) / 5
    assert per_job < 0.05, "Job.run took %.3fs" % per_job


# -- parameter resolution and the Job object ---------------------------------------------------
def test_getitem_resolution_order() -> None:
    class WithAttrs(Job):
        partitions = 7
        sort = None  # a None attribute still wins over the worker's default

    worker = Worker(partitions=2, status_interval=5)
    job = WithAttrs(master="http://127.0.0.1:1", worker=worker)
    assert worker.getitem("partitions", job, {"partitions": 9}) == 9
    assert worker.getitem("partitions", job, {}) == 7
    assert worker.getitem("sort", job, {}) is None
    assert worker.getitem("status_interval", job, {}) == 5
    assert worker.getitem("sort_buffer_size", job, {}) == "10%"
    assert worker.getitem("nothing", job, {}, "dflt") == "dflt"
    job.status_interval = 11  # instance attributes count too
    assert worker.getitem("status_interval", job, {}) == 11


def test_bound_methods_resolve_from_the_job() -> None:
    class Methods(Job):
        def map(self, entry: Any, params: Any) -> Any:
            return [(self.name, entry)]

    job = Methods(master="http://127.0.0.1:1")
    fn = job.worker.getitem("map", job, {})
    assert fn("e", None) == [("Methods", "e")]


def test_proxy_functions(fake_master: FakeMaster) -> None:
    job = Job(name="Named@1:2:3", master=fake_master.url)
    assert job.results() == ("unknown job", [])
    with pytest.raises(AttributeError):
        job.not_a_proxy  # noqa: B018
    assert job.wait.func.__name__ == "wait"


def test_job_pickles_without_its_client() -> None:
    job = Configured(master="http://127.0.0.1:1")
    assert job.disco.master == "http://127.0.0.1:1"
    copy = pickle.loads(pickle.dumps(job))
    assert copy.__dict__["_disco"] is None
    assert copy.disco.master == "http://127.0.0.1:1"
    assert copy.worker["partitions"] == 1 and copy.partitions == 3


def test_default_parameters_are_those_of_10_1() -> None:
    worker = Worker()
    assert worker["partitions"] == 1
    assert worker["reduce_reader"] is chain_reader
    assert worker["sort"] is False and worker["sort_buffer_size"] == "10%"
    assert worker["status_interval"] == 100000
    assert worker["version"] == "%d.%d" % sys.version_info[:2]
    assert worker["required_files"] == {} and worker["required_modules"] is None
    assert isinstance(worker["params"], Params)
    assert worker["combiner"] is None and sum_combiner is not None


def test_job_chain_runs_jobs_when_their_inputs_are_ready(fake_master: FakeMaster) -> None:
    from disco.job import JobChain

    first = Job(name="First", master=fake_master.url)
    second = Job(name="Second", master=fake_master.url)
    first.worker["map"] = second.worker["map"] = fun_map
    chain = JobChain({first: ["raw://a"], second: first})
    assert chain.walk() == 0
    assert first.name == "First@5:6:1" and second.name == "Second"  # second waits
    fake_master.results[first.name] = ["ready", [["disco://127.0.0.1/r0"]]]
    assert chain.walk() == 1
    assert second.name == "Second@5:6:2"
    assert fake_master.last().jobdict["input"] == [["disco://127.0.0.1/r0"]]
    fake_master.results[second.name] = ["ready", []]
    assert chain.wait(poll_interval=0) is chain
    fake_master.results[second.name] = ["dead", []]
    with pytest.raises(Exception, match="Status dead"):
        chain.walk()
