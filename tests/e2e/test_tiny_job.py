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
from tests.conftest import child_pids, environ_without_disco, free_port, poll_for, run_python

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
