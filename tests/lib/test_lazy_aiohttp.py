"""disco.lazy_aiohttp: the masters serve with aiohttp's web server and never import its
HTTP client until something uses it (issue 13, tiny job); a node in the master's process
copies the job pack from the master's file instead of downloading it.

Each check runs in a fresh interpreter (the import is what is checked)."""

from __future__ import annotations

import asyncio
import os
import textwrap

import pytest

from disco.backends.base import TaskSpec
from disco.node.jobhome import JobHomeError, copy_jobpack, ensure_jobhome
from tests.conftest import environ_without_disco, run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

pytestmark = pytest.mark.timeout(180)

CLIENT = ["aiohttp.client", "aiohttp.connector", "aiohttp.client_reqrep", "aiohttp.tracing"]


def _run(script: str) -> list[str]:
    out = run_python("-c", textwrap.dedent(script), cwd=ROOT, env=environ_without_disco())
    return out.splitlines()


def test_embedded_master_and_its_first_job_import_no_aiohttp_client() -> None:
    """Started, a job run on it and its results read: no module of aiohttp's client
    was imported; then the client works as usual when a program uses it."""
    lines = _run(
        """
        import asyncio, sys
        from disco.core import Job, result_iterator
        from disco.embedded import EmbeddedMaster
        from tests.lib.pairmap import pair_map as parent_map
        CLIENT = %r
        with EmbeddedMaster() as m:
            job = Job(master=m.url).run(input=["raw://a", "raw://b"], map=parent_map)
            print("records", len(list(result_iterator(job.wait(timeout=60)))))
            print("client", [n for n in CLIENT if n in sys.modules])
            # later use: the package's __init__ runs, with deferred CA certificates
            import aiohttp
            print("lazy", type(aiohttp).__name__)
            from aiohttp import ClientTimeout, connector

            async def get():
                async with aiohttp.ClientSession(timeout=ClientTimeout(total=30)) as s:
                    async with s.get(m.url + "/disco/version") as r:
                        return r.status
            print("status", asyncio.run(get()))
            print("module", type(aiohttp).__name__, "ClientSession" in dir(aiohttp))
            print("ca_pending", connector._SSL_CONTEXT_VERIFIED.ca_pending)
            from importlib.metadata import version
            print("version", aiohttp.__version__ == version("aiohttp"))
        """
        % CLIENT
    )
    assert lines == [
        "records 2",
        "client []",
        "lazy LazyPackage",
        "status 200",
        "module module True",
        "ca_pending True",
        "version True",
    ]


def test_a_program_that_imported_aiohttp_keeps_it() -> None:
    lines = _run(
        """
        import aiohttp, sys, types
        from disco.lazy_aiohttp import import_aiohttp_web
        web = import_aiohttp_web()
        print(sys.modules["aiohttp"] is aiohttp, type(aiohttp) is types.ModuleType)
        print(web is sys.modules["aiohttp.web"], "aiohttp.client" in sys.modules)
        """
    )
    assert lines == ["True True", "True True"]


def test_names_of_the_package_and_its_submodules_before_and_after_its_init() -> None:
    """Submodules import without the package's ``__init__``; a name it defines (as an
    attribute, by ``from aiohttp import``, or an unknown one) runs it once."""
    lines = _run(
        """
        import sys
        from disco.lazy_aiohttp import import_aiohttp_web
        import_aiohttp_web()
        import aiohttp
        from aiohttp import hdrs, web
        print(type(aiohttp).__name__, hdrs.CONTENT_TYPE, "aiohttp.client" in sys.modules)
        try:
            aiohttp.NoSuchName
        except AttributeError as exc:
            print("AttributeError", exc)
        print(type(aiohttp).__name__, "aiohttp.client" in sys.modules)
        from aiohttp import ClientError, web_request
        print(issubclass(ClientError, Exception), aiohttp.ClientError is ClientError)
        """
    )
    assert lines == [
        "LazyPackage Content-Type False",
        "AttributeError module 'aiohttp' has no attribute 'NoSuchName'",
        "module True",
        "True True",
    ]


def test_python_m_disco_master_serves_without_aiohttp_client(tmp_path) -> None:
    """The deployed master (``python -m disco.master``) imports aiohttp the same way."""
    main = textwrap.dedent(
        """
        import sys, threading, runpy, os, signal, socket, time, urllib.request
        with socket.socket() as s:  # not tests.conftest.free_port: conftest imports aiohttp
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        seen = []
        def stop():
            for _ in range(600):
                try:
                    urllib.request.urlopen("http://127.0.0.1:%d/disco/version" % port, timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            seen.append([n for n in CLIENT if n in sys.modules])
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=stop, daemon=True).start()
        sys.argv = ["disco.master", "--host", "127.0.0.1", "--port", str(port)]
        try:
            runpy.run_module("disco.master", run_name="__main__")
        except SystemExit:
            pass
        print("client", seen)
        """
    ).replace("CLIENT", repr(CLIENT))
    env = environ_without_disco(DISCO_ROOT=str(tmp_path), DISCO_HOME=str(tmp_path))
    out = run_python("-c", main, cwd=ROOT, env=env, timeout=120)
    assert out.splitlines()[-1] == "client [[]]", out


def test_remote_channel_nodes_still_download_the_job_pack() -> None:
    """With ``remote_channel`` the local nodes act as remote ones: the job pack comes
    over HTTP from the master (aiohttp's client), and the job runs."""
    lines = _run(
        """
        import sys
        from disco.core import Job, result_iterator
        from disco.embedded import EmbeddedMaster
        from tests.lib.pairmap import pair_map as parent_map
        with EmbeddedMaster(backend_options={"remote_channel": True}) as m:
            job = Job(master=m.url).run(input=["raw://a"], map=parent_map)
            print("records", len(list(result_iterator(job.wait(timeout=60)))))
            print("client", "aiohttp.client" in sys.modules)
        """
    )
    assert lines == ["records 1", "client True"]


def _spec(tmp_path, jobname: str = "tiny@5a1:b2c3d:4e5f6") -> TaskSpec:
    return TaskSpec(
        jobname=jobname,
        taskid=0,
        stage="map",
        grouping="split",
        group=(0, ""),
        host="localhost",
        attempt=0,
        worker="worker",
        jobenvs={},
        jobpack_url="http://127.0.0.1:1/disco/ctrl/parameters?name=" + jobname,
        master="http://127.0.0.1:1",
        disco_port=1,
        put_port=1,
        disco_data=str(tmp_path / "data"),
        ddfs_data=str(tmp_path / "ddfs"),
    )


def test_a_missing_master_job_pack_fails_as_a_failed_download(tmp_path) -> None:
    """The master's file gone (the job purged meanwhile): the same ``JobHomeError`` as
    when the master does not send it, and no job home is left half made."""
    spec = _spec(tmp_path)
    home = str(tmp_path / "home")
    with pytest.raises(JobHomeError, match="could not fetch the job pack from http://"):
        copy_jobpack(spec, home, str(tmp_path / "nowhere" / "jobfile"))
    assert os.listdir(home) == []
    with pytest.raises(JobHomeError, match="could not fetch the job pack"):
        asyncio.run(ensure_jobhome(spec, local_jobpack=str(tmp_path / "nowhere")))
