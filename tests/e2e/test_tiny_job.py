"""A tiny job as a whole process (issue 13, "Tiny job"): what the embedded master does
before it serves, and at exit.

- the worker zygote is started before the master's modules are imported (so it imports
  the worker library on the other core meanwhile), and the node adopts that zygote: the
  first job's workers are forked from it;
- ``python -m disco.master`` does the same;
- a script on the default embedded master exits cleanly and fast (``gc.freeze`` before
  the interpreter's last collections), with its own exit hooks still run.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from disco.core import Job, result_iterator
from disco.embedded import EmbeddedMaster
from tests.conftest import (
    child_pids,
    environ_without_disco,
    free_port,
    live_processes,
    poll_for,
    run_python,
)

pytestmark = pytest.mark.timeout(120)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parent_map(entry, params):
    import os

    with open("/proc/%d/stat" % os.getppid()) as f:
        grandparent = int(f.read().rsplit(")", 1)[1].split()[1])
    yield entry, [os.getppid(), grandparent]


def _cmdline(pid: int) -> str:
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        return f.read().replace(b"\0", b" ").decode()


def test_embedded_master_adopts_a_zygote_started_before_it(tmp_path) -> None:
    before = child_pids()
    with EmbeddedMaster(tmp_path / "root") as m:
        backend = m.server.backend
        zygote = backend.runner.zygotes.current
        # adopted at construction, not started by the first task
        assert zygote is not None and zygote.alive
        assert "disco.node.zygote_process" in _cmdline(zygote.pid)
        # recorded like a worker session (reaped if this master dies)
        registry = os.listdir(os.path.join(m.root, "data", ".disco-workers"))
        assert any(name.endswith("-%d-%d" % (zygote.pid, _start(zygote.pid))) for name in registry)
        job = Job(master=m.url).run(input=["raw://a", "raw://b"], map=parent_map)
        parents = dict(result_iterator(job.wait(timeout=60)))
        # forked from the job's warm process, a child of that zygote
        assert parents["a"] == parents["b"]
        assert parents["a"][1] == zygote.pid
        assert backend.runner.zygotes.current is zygote
    poll_for(lambda: not (child_pids() - before), 5.0, "the zygote and workers to exit")


def _start(pid: int) -> int:
    from disco.node.orphans import start_time

    return start_time(pid)


# Run in a fresh interpreter: when ``disco.master.server`` starts importing, is a zygote
# (a child running ``disco.node.zygote_process``) already running?
_PROBE = textwrap.dedent(
    """
    import importlib.abc, os, sys

    def zygote_children():
        me, found = str(os.getpid()), []
        for entry in os.listdir("/proc"):
            try:
                with open("/proc/%s/stat" % entry) as f:
                    ppid = f.read().rsplit(")", 1)[1].split()[1]
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    cmd = f.read()
            except (OSError, IndexError):
                continue
            if ppid == me and b"disco.node.zygote_process" in cmd:
                found.append(int(entry))
        return found

    class Probe(importlib.abc.MetaPathFinder):
        seen = None
        def find_spec(self, name, path=None, target=None):
            if name == "disco.master.server" and Probe.seen is None:
                # the zygote's start may still be under way (the embedded master does not
                # wait for it before importing); it must not wait for this import
                import time
                deadline = time.monotonic() + 30
                while not zygote_children() and time.monotonic() < deadline:
                    time.sleep(0.005)
                Probe.seen = zygote_children()
            return None

    sys.meta_path.insert(0, Probe())
    MODE
    print("zygotes when the master was imported:", Probe.seen, flush=True)
    """
)

_EMBEDDED = textwrap.dedent(
    """
    from disco.embedded import EmbeddedMaster
    with EmbeddedMaster() as m:
        adopted = m.server.backend.runner.zygotes.current.pid
    assert Probe.seen == [adopted], (Probe.seen, adopted)
    """
)


def test_zygote_starts_before_the_master_is_imported() -> None:
    script = _PROBE.replace("MODE", _EMBEDDED)
    out = run_python("-c", script, cwd=ROOT, env=environ_without_disco(), timeout=60)
    assert "zygotes when the master was imported: [" in out
    assert "[]" not in out


def test_embedded_start_imports_the_master_while_the_zygote_starts() -> None:
    """The zygote's start (fork, then its exec) runs on the loop thread while the calling
    thread imports the master: a zygote start that can only finish once the master's
    import has begun does not hold the start up, and is still adopted."""
    script = textwrap.dedent(
        """
        import asyncio, importlib.abc, sys, threading
        import disco.embedded as embedded

        importing = threading.Event()
        seen = []
        real = embedded.prestart_zygote

        async def prestart_after_the_import_began(settings):
            loop = asyncio.get_running_loop()
            seen.append(await loop.run_in_executor(None, importing.wait, 60))
            return await real(settings)

        class Probe(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "disco.master.server":
                    importing.set()
                return None

        sys.meta_path.insert(0, Probe())
        embedded.prestart_zygote = prestart_after_the_import_began
        with embedded.EmbeddedMaster() as m:
            zygote = m.server.backend.runner.zygotes.current
            print("waited for the import:", seen, "adopted:", zygote is not None and zygote.alive)
        """
    )
    out = run_python("-c", script, cwd=ROOT, env=environ_without_disco(), timeout=90)
    assert "waited for the import: [True] adopted: True" in out


def test_python_m_disco_master_starts_the_zygote_before_importing_the_master(tmp_path) -> None:
    """``python -m disco.master``: the zygote is its child before the master imports."""
    main = textwrap.dedent(
        """
        import threading, runpy, os, signal, time, urllib.request
        def stop():
            for _ in range(600):
                try:
                    urllib.request.urlopen("http://127.0.0.1:%s/disco/version" % PORT, timeout=1)
                    break
                except OSError:
                    time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)
        threading.Thread(target=stop, daemon=True).start()
        sys.argv = ["disco.master", "--host", "127.0.0.1", "--port", str(PORT)]
        try:
            runpy.run_module("disco.master", run_name="__main__")
        except SystemExit:
            pass
        """
    )
    script = _PROBE.replace("MODE", main.replace("PORT", str(free_port())))
    env = environ_without_disco(DISCO_ROOT=str(tmp_path), DISCO_HOME=str(tmp_path))
    out = run_python("-c", script, cwd=ROOT, env=env, timeout=90)
    line = [t for t in out.splitlines() if t.startswith("zygotes when")]
    assert line and line[0] != "zygotes when the master was imported: []", out
    assert "None" not in line[0], out


def test_script_on_the_default_master_exits_cleanly_with_gc_frozen(tmp_path) -> None:
    """The whole-process path: default_master(), a job, exit.  The user's exit hooks
    registered before the master still run, after ours, and see the collector frozen."""
    script = textwrap.dedent(
        """
        import atexit, gc, os
        os.environ.pop("DISCO_MASTER", None)
        atexit.register(lambda: print("user hook: frozen", gc.get_freeze_count() > 0, flush=True))
        from disco.core import Job, result_iterator
        from disco.embedded import default_master
        from tests.e2e.test_tiny_job import parent_map
        master = default_master()
        job = Job(master=master).run(input=["raw://x", "raw://y"], map=parent_map)
        print("records", len(list(result_iterator(job.wait(timeout=60)))), flush=True)
        """
    )
    env = environ_without_disco(
        DISCO_SETTINGS_FILE="",
        DISCO_HOME=str(tmp_path),
        DISCO_PORT=str(free_port()),  # nothing answers at the default address: embedded
    )
    out = run_python("-c", script, cwd=ROOT, env=env, timeout=90)
    assert out.splitlines() == ["records 2", "user hook: frozen True"], out


def test_a_whole_tiny_job_imports_no_urllib3_sysconfig_data_or_modulefinder(tmp_path) -> None:
    """The script of the tiny job (its functions in ``__main__``) on the default master:
    its submit sends over ``http.client`` (already imported by aiohttp here), and its
    module discovery needs neither ``sysconfig``'s data (the script is outside every
    prefix; cloudpickle is in site-packages) nor ``modulefinder`` (no local modules)."""
    script = tmp_path / "tiny_script.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            from disco.core import Job, result_iterator
            from disco.embedded import default_master

            def fun_map(line, params):
                for word in line.split():
                    yield word, 1

            def fun_reduce(iter, params):
                totals = {}
                for word, count in iter:
                    totals[word] = totals.get(word, 0) + count
                return totals.items()

            job = Job(master=default_master()).run(
                input=["raw://the quick fox", "raw://the fox"], map=fun_map, reduce=fun_reduce
            )
            print(sorted((w.decode() if isinstance(w, bytes) else w, int(c))
                         for w, c in result_iterator(job.wait(timeout=60))))
            print("imported", sorted(m for m in sys.modules if m.split(".")[0] == "urllib3"
                  or m.startswith("_sysconfigdata") or m in ("modulefinder", "importlib.metadata")))
            """
        )
    )
    env = environ_without_disco(
        DISCO_SETTINGS_FILE="", DISCO_HOME=str(tmp_path), DISCO_PORT=str(free_port())
    )
    out = run_python(str(script), cwd=str(tmp_path), env=env, timeout=90)
    assert out.splitlines() == [
        "[('fox', 2), ('quick', 1), ('the', 2)]",
        "imported []",
    ], out


# -- issue 13, tiny job as a whole process: start, wait and exit ----------------------


def test_import_disco_core_leaves_the_master_and_its_http_server_out() -> None:
    """A client script pays for the client only: no aiohttp, asyncio, master, DDFS
    tarball or 0.5 ``http_server`` alias at ``import disco.core``."""
    script = textwrap.dedent(
        """
        import sys
        import disco.core
        heavy = ["aiohttp", "asyncio", "disco.master", "disco.embedded", "tarfile",
                 "http.server", "socketserver", "urllib.request", "sqlite3"]
        print([name for name in heavy if name in sys.modules])
        """
    )
    out = run_python("-c", script, cwd=ROOT, env=environ_without_disco(), timeout=60)
    assert out.splitlines() == ["[]"]


def test_embedded_start_imports_only_what_serving_needs() -> None:
    """Started and serving, the embedded master has not imported what only other
    requests need (``tarfile`` for DDFS tarball pushes, the 0.5 ``http_server`` and
    ``socket_server`` aliases of ``disco.compat``, aiohttp's HTTP client
    (``disco.lazy_aiohttp``), the DDFS client), and aiohttp's default client SSL
    contexts, once imported, have not read the CA bundle (``disco.lazy_ca``)."""
    script = textwrap.dedent(
        """
        import sys
        from disco.embedded import EmbeddedMaster
        with EmbeddedMaster() as m:
            heavy = ("tarfile", "http.server", "socketserver", "aiohttp.client",
                     "aiohttp.connector", "disco.ddfs.client")
            print([n for n in heavy if n in sys.modules])
            from aiohttp import connector
            print(connector._SSL_CONTEXT_VERIFIED.ca_pending)
        """
    )
    out = run_python("-c", script, cwd=ROOT, env=environ_without_disco(), timeout=60)
    assert out.splitlines() == ["[]", "True"]


def test_embedded_start_runs_no_garbage_collection_and_restores_the_collector(
    tmp_path,
) -> None:
    """The start allocates only live objects: the cyclic collector is off meanwhile, and
    afterwards as it was before (on, or off when the caller had switched it off)."""
    import gc

    runs: list[str] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            runs.append(phase)

    was = gc.isenabled()
    gc.callbacks.append(record)
    try:
        for enabled in (True, False):
            (gc.enable if enabled else gc.disable)()
            del runs[:]
            m = EmbeddedMaster(tmp_path / ("root-%s" % enabled))
            m.start()
            try:
                assert runs == []  # no collection during the start
                assert gc.isenabled() is enabled
            finally:
                m.stop()
    finally:
        gc.callbacks.remove(record)
        (gc.enable if was else gc.disable)()


def test_importing_the_client_runs_few_young_collections_and_ages_its_objects() -> None:
    """``import disco.core``, ``Job`` and ``disco.embedded`` (fresh interpreters): no
    middle or oldest generation collection and only a few young ones (the modules'
    own bodies; about 40 young and 3 middle ones without the pause), the imported objects
    in the oldest generation afterwards with nothing left frozen, the collector as the
    program had it (on, or off), and an object the program froze stays frozen."""
    script = textwrap.dedent(
        """
        import gc, sys
        kept = [object()]
        MODE
        runs = []
        gc.callbacks.append(lambda phase, info: phase == "start" and runs.append(info))
        import disco.core
        from disco.core import Job
        import disco.embedded
        older = [i["generation"] for i in runs if i["generation"] > 0]
        aged = any(o is disco.core.Disco for o in gc.get_objects(generation=2))
        collected = any(o is kept for g in range(3) for o in gc.get_objects(generation=g))
        print(len(runs) < 10, older, gc.isenabled(), aged, gc.get_freeze_count() > 0,
              collected, Job.__name__)
        """
    )
    env = environ_without_disco()
    on = run_python("-c", script.replace("MODE", ""), cwd=ROOT, env=env, timeout=60)
    assert on.split() == ["True", "[]", "True", "True", "False", "True", "Job"], on
    off = run_python("-c", script.replace("MODE", "gc.disable()"), cwd=ROOT, env=env, timeout=60)
    assert off.split() == ["True", "[]", "False", "True", "False", "True", "Job"], off
    kept = run_python("-c", script.replace("MODE", "gc.freeze()"), cwd=ROOT, env=env, timeout=60)
    # the program's frozen objects stay frozen (and so nothing is aged: unfreeze would
    # release them)
    assert kept.split() == ["True", "[]", "True", "False", "True", "False", "Job"], kept


def test_objects_of_the_start_are_in_the_oldest_generation(tmp_path) -> None:
    """After the start the youngest generations are empty (the master's objects went to
    the oldest one, so the next young collections do not walk them); nothing stays
    frozen, cyclic garbage made before the start is still collected, and objects the
    program froze itself stay frozen."""
    import gc
    import weakref

    class Node:
        pass

    was = gc.isenabled()
    gc.enable()
    try:
        a, b = Node(), Node()
        a.other, b.other = b, a  # a cycle: only the cyclic collector frees it
        gone = weakref.ref(a)
        del a, b
        with EmbeddedMaster(tmp_path / "root") as m:
            assert gc.get_freeze_count() == 0
            oldest = gc.get_objects(generation=2)
            assert any(o is m.server for o in oldest)
            assert any(o is m.server.runtime for o in oldest)
            del oldest
            assert gone() is not None
            gc.collect()
            assert gone() is None
            job = Job(master=m.url).run(input=["raw://a"], map=parent_map)
            assert len(list(result_iterator(job.wait(timeout=60)))) == 1
        kept = [Node()]  # frozen by the program: must stay frozen
        gc.freeze()
        try:
            with EmbeddedMaster(tmp_path / "root2"):
                # the permanent generation is in none of the three collected ones
                assert not any(o is kept for g in range(3) for o in gc.get_objects(g))
        finally:
            gc.unfreeze()
    finally:
        (gc.enable if was else gc.disable)()


def test_embedded_master_serves_its_first_job_right_after_start(tmp_path) -> None:
    """No warm-up: a job submitted the moment ``start()`` returns is accepted at once
    (its start time, recorded by the master, follows the return of ``start()``
    closely) and runs to its results."""
    import time

    with EmbeddedMaster(tmp_path / "root") as m:
        started = time.time()
        job = Job(master=m.url).run(input=["raw://a", "raw://b"], map=parent_map)
        results = dict(result_iterator(job.wait(timeout=60)))
        info = m.disco.jobinfo(job.name)
    assert set(results) == {"a", "b"}
    assert 0 <= info["start_time"] - started < 5.0, (info["start_time"], started)


def test_wait_returns_when_the_job_ends_not_at_a_poll_interval(tmp_path) -> None:
    """``Job.wait``/``Disco.wait`` is a long poll answered when the job ends: with a
    poll interval of 30 s it returns within a small margin of the job's end time (as
    the master recorded it), far before any interval."""
    import time

    with EmbeddedMaster(tmp_path / "root") as m:
        job = Job(master=m.url).run(input=["raw://a", "raw://b"], map=parent_map)
        job.wait(poll_interval=30, timeout=120)
        returned = time.time()
        info = m.disco.jobinfo(job.name)
    assert info["active"] == "ready"
    assert 0 <= returned - info["end_time"] < 5.0, (returned, info["end_time"])


def test_own_temporary_store_syncs_nothing_a_given_root_is_durable(tmp_path) -> None:
    """An embedded master in its own temporary directory (deleted at stop) keeps its
    SQLite journal in memory and does not sync; with a root of the caller's, the store
    is durable (WAL, synced at checkpoints) as for a deployed master."""

    def journal(m: EmbeddedMaster) -> tuple[str, int, bool]:
        store = m.server.store
        mode = m.call(lambda: store._db.execute("PRAGMA journal_mode").fetchone()[0])
        sync = m.call(lambda: store._db.execute("PRAGMA synchronous").fetchone()[0])
        return mode, sync, os.path.exists(store.path + "-wal")

    with EmbeddedMaster() as own:
        assert journal(own) == ("memory", 0, False)
        Job(master=own.url).run(input=["raw://a"], map=parent_map).wait(timeout=60)
    with EmbeddedMaster(tmp_path / "root") as given:
        assert journal(given) == ("wal", 1, True)


def test_default_master_exit_leaves_no_thread_process_or_directory(tmp_path) -> None:
    """A script on the default embedded master: at exit its master stops, its zygote and
    workers end, and its temporary root is deleted (by a child that outlives the
    script by milliseconds: polled for, with a deadline)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    script = textwrap.dedent(
        """
        import os, threading
        os.environ.pop("DISCO_MASTER", None)
        from disco.core import Job, result_iterator
        from disco import embedded
        from tests.e2e.test_tiny_job import parent_map
        master = embedded.default_master()
        job = Job(master=master).run(input=["raw://x", "raw://y"], map=parent_map)
        print("records", len(list(result_iterator(job.wait(timeout=60)))), flush=True)
        print("root", embedded._default.root, flush=True)
        print("zygote", embedded._default.server.backend.runner.zygotes.current.pid, flush=True)
        def after_stop():
            # asyncio's child watcher thread of the zygote sets the exit status on the
            # loop, then ends: it may still be in its last instructions when the stop
            # returns, so threads are polled for (a thread left running fails)
            import time
            deadline = time.monotonic() + 5.0
            while True:
                names = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
                if not names or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            print("threads_after_stop", names, flush=True)
        import atexit
        atexit.register(after_stop)  # plain atexit hooks run after the master's stop
        """
    )
    env = environ_without_disco(
        DISCO_SETTINGS_FILE="",
        DISCO_HOME=str(tmp_path),
        DISCO_PORT=str(free_port()),  # nothing answers at the default address: embedded
        TMPDIR=str(tmp),
    )
    out = run_python("-c", script, cwd=ROOT, env=env, timeout=90).splitlines()
    fields = dict(line.split(" ", 1) for line in out)
    assert fields["records"] == "2"
    root, zygote = fields["root"], int(fields["zygote"])
    assert root.startswith(str(tmp))
    assert fields["threads_after_stop"] == "[]", out

    def gone() -> bool:
        procs = live_processes()
        return zygote not in procs and not os.path.exists(root) and not os.listdir(tmp)

    poll_for(gone, 10.0, "the zygote to end and the temporary root to be deleted")


def test_a_failed_embedded_start_leaves_no_temporary_directory(tmp_path, monkeypatch) -> None:
    """An embedded master that cannot start (its port is taken) removes the temporary
    directory it made, and leaves no process behind."""
    import socket
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    before = child_pids()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        m = EmbeddedMaster(port=taken.getsockname()[1])
        with pytest.raises(OSError):
            m.start()
    assert os.listdir(tmp_path) == []
    poll_for(lambda: not (child_pids() - before), 5.0, "the zygote to exit")


_ZYGOTE_START = textwrap.dedent(
    """
    import asyncio, os, signal, sys
    from disco.node.zygote import prestart

    forks = []
    os.register_at_fork(before=lambda: forks.append(os.getpid()))

    async def main():
        zygote = await prestart()
        assert zygote is not None and zygote.alive
        print("zygote", zygote.pid, "forks", len(forks), flush=True)
        if sys.argv[1] == "die":
            os.kill(os.getpid(), signal.SIGKILL)
        await zygote.close()

    asyncio.run(main())
    """
)


def test_the_zygote_is_spawned_not_forked_from_the_master() -> None:
    """The zygote starts without a fork of the master's interpreter (no ``preexec_fn``:
    ``vfork`` and exec, so no at-fork hook runs and the master does not copy its pages
    while it imports and starts); it asks to die with the master itself."""
    out = run_python("-c", _ZYGOTE_START, "close", cwd=ROOT, env=environ_without_disco())
    assert out.split()[2:] == ["forks", "0"], out


def test_the_zygote_dies_with_its_master() -> None:
    """A SIGKILLed master takes its zygote with it (``PR_SET_PDEATHSIG``, which the zygote
    asks for first thing, checking that its parent is still the master)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", _ZYGOTE_START, "die"],
        cwd=ROOT,
        env=environ_without_disco(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    zygote = int(proc.stdout.split()[1])
    poll_for(lambda: zygote not in live_processes(), 10.0, "the zygote to die with its master")


def test_a_job_on_an_embedded_master_imports_no_ctypes() -> None:
    """``prctl`` (through ``ctypes``) is looked up only by a process that forks a child
    calling ``die_with_parent``: the zygote asks for it itself, so a master whose workers
    come from the zygote never imports ``ctypes`` (about 2 ms of its start)."""
    script = textwrap.dedent(
        """
        import sys
        from disco.core import Job, result_iterator
        from disco.embedded import EmbeddedMaster

        def fun_map(entry, params):
            yield entry, 1

        with EmbeddedMaster() as m:
            job = Job(master=m.url).run(input=["raw://a"], map=fun_map)
            print(sorted(k for k, v in result_iterator(job.wait(timeout=60))))
        print("ctypes" in sys.modules)
        """
    )
    out = run_python("-c", script, cwd=ROOT, env=environ_without_disco(), timeout=90)
    assert out.split() == ["['a']", "False"], out
