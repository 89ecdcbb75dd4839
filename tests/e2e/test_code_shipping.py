"""Job code ships to nodes where none of it is installed (issue 5, "Code shipping").

Each test writes a script (and its helper modules) to a fresh directory and runs it as
a subprocess against a real master with real worker processes.  The workers run in
the job home with only ``lib/`` and the job home on their path: the script's directory
is not visible to them, so every job below works only because its code was shipped.
Each job uses the form under test for map, combiner, partition and reduce together.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter

import pytest

from disco.core import Disco

pytestmark = pytest.mark.timeout(90)

LINES = ["the cat sat", "on the mat", "the end"]
EXPECTED = dict(Counter(word for line in LINES for word in line.split()))

PRELUDE = """
import functools, json, sys
from disco.core import Job, result_iterator
from disco.util import kvgroup

INPUTS = ["raw://" + line for line in %r]

def show(job):
    print(json.dumps(dict(result_iterator(job.wait()))))
""" % (LINES,)

# The four functions as plain definitions; most forms reuse this text.
FUNCTIONS = """
    def fun_map(line, params):
        for word in line.split():
            yield word, 1

    def fun_combiner(key, value, buf, done, params):
        if done:
            return sorted(buf.items())
        buf[key] = buf.get(key, 0) + value

    def fun_partition(key, nr_partitions, params):
        return len(key) % nr_partitions

    def fun_reduce(iter, params):
        from disco.util import kvgroup
        for word, counts in kvgroup(sorted(iter)):
            yield word, sum(counts)
"""

RUN = """
    show(Job().run(input=INPUTS, map=%s, combiner=%s, partition=%s, reduce=%s, partitions=2))
"""


def run_script(
    tmp_path, master, script: str, files: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    tmp_path = tmp_path / "job"  # (tmp_path/disco is the master's data)
    tmp_path.mkdir(exist_ok=True)
    for name, text in (files or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    (tmp_path / "script.py").write_text(PRELUDE + textwrap.dedent(script))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCO_", "PYTHON"))}
    env.update(DISCO_MASTER=master.url, DISCO_PORT=str(master.port), DISCO_MASTER_HOST=master.host)
    return subprocess.run(
        [sys.executable, "script.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def counts(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check(tmp_path, master, script: str, files: dict[str, str] | None = None) -> None:
    assert counts(run_script(tmp_path, master, script, files)) == EXPECTED


def test_functions_of_main(tmp_path, master) -> None:
    check(
        tmp_path,
        master,
        FUNCTIONS + RUN % ("fun_map", "fun_combiner", "fun_partition", "fun_reduce"),
    )


def test_functions_of_a_notebook_namespace(tmp_path, master) -> None:
    # A notebook cell: code exec'd in a namespace that is not an importable module.
    script = """
    namespace = {"__name__": "notebook_cell_7"}
    exec(compile(%r, "<cell 7>", "exec"), namespace)
    """ % (textwrap.dedent(FUNCTIONS),)
    script += RUN % tuple(
        'namespace["%s"]' % n for n in ("fun_map", "fun_combiner", "fun_partition", "fun_reduce")
    )
    check(tmp_path, master, script)


def test_lambdas(tmp_path, master) -> None:
    script = """
    show(Job().run(
        input=INPUTS,
        map=lambda line, params: [(w, 1) for w in line.split()],
        combiner=lambda k, v, buf, done, params: (
            sorted(buf.items()) if done else buf.__setitem__(k, buf.get(k, 0) + v)),
        partition=lambda key, n, params: len(key) % n,
        reduce=lambda iter, params: ((k, sum(vs)) for k, vs in kvgroup(sorted(iter))),
        partitions=2,
    ))
    """
    check(tmp_path, master, script)


def test_closures_over_local_variables(tmp_path, master) -> None:
    script = """
    def make_job_functions(weight, modulus):
        seen = {"calls": 0}
        def fun_map(line, params):
            for word in line.split():
                yield word, weight
        def fun_combiner(key, value, buf, done, params):
            if not done:
                buf[key] = buf.get(key, 0) + value * weight
            return [(k, v // weight) for k, v in sorted(buf.items())] if done else None
        def fun_partition(key, nr_partitions, params):
            return len(key) % modulus
        def fun_reduce(iter, params):
            seen["calls"] += 1
            for word, counts in kvgroup(sorted(iter)):
                yield word, sum(counts) // weight
        return fun_map, fun_combiner, fun_partition, fun_reduce

    m, c, p, r = make_job_functions(weight=3, modulus=2)
    """
    check(tmp_path, master, script + RUN % ("m", "c", "p", "r"))


def test_functools_partial(tmp_path, master) -> None:
    script = """
    def split_map(line, params, sep):
        for word in line.split(sep):
            yield word, 1

    def combine(key, value, buf, done, params, start=0):
        if done:
            return sorted(buf.items())
        buf[key] = buf.get(key, start) + value

    def by_length(key, nr_partitions, params, offset):
        return (len(key) + offset) % nr_partitions

    def summing_reduce(iter, params, scale):
        for word, counts in kvgroup(sorted(iter)):
            yield word, sum(counts) * scale
    """
    script += RUN % (
        'functools.partial(split_map, sep=" ")',
        "functools.partial(combine, start=0)",
        "functools.partial(by_length, offset=1)",
        "functools.partial(summing_reduce, scale=1)",
    )
    check(tmp_path, master, script)


def test_decorated_functions(tmp_path, master) -> None:
    script = """
    def traced(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return fn(*args, **kwargs)
        return wrapper
    """
    script += FUNCTIONS.replace("\n    def ", "\n    @traced\n    def ")
    script += RUN % ("fun_map", "fun_combiner", "fun_partition", "fun_reduce")
    check(tmp_path, master, script)


def test_bound_methods(tmp_path, master) -> None:
    script = """
    class Counting:
        def __init__(self, weight):
            self.weight = weight
        def map(self, line, params):
            for word in line.split():
                yield word, self.weight
        def combiner(self, key, value, buf, done, params):
            if not done:
                buf.setdefault(key, []).append(value)
            return [(k, sum(vs)) for k, vs in sorted(buf.items())] if done else None
        def partition(self, key, nr_partitions, params):
            return len(key) % nr_partitions
        def reduce(self, iter, params):
            for word, counts in kvgroup(sorted(iter)):
                yield word, sum(counts) // self.weight

    c = Counting(weight=2)
    """
    check(tmp_path, master, script + RUN % ("c.map", "c.combiner", "c.partition", "c.reduce"))


def test_job_subclass_defined_in_the_script(tmp_path, master) -> None:
    script = """
    class WordCount(Job):
        partitions = 2

        def map(self, line, params):
            for word in line.split():
                yield word, 1

        def combiner(self, key, value, buf, done, params):
            if key is not None:
                buf[key] = buf.get(key, 0) + value
            return sorted(buf.items()) if done else None

        def partition(self, key, nr_partitions, params):
            return len(key) % nr_partitions

        @staticmethod
        def reduce(iter, params):
            for word, counts in kvgroup(sorted(iter)):
                yield word, sum(counts)

    show(WordCount().run(input=INPUTS))
    """
    check(tmp_path, master, script)


def test_functions_importing_a_sibling_module(tmp_path, master) -> None:
    helper = """
    def words(line):
        return line.split()

    def add(buf, key, value):
        buf[key] = buf.get(key, 0) + value
    """
    script = """
    import wordhelp  # used by fun_partition through this global

    def fun_map(line, params):
        import wordhelp
        for word in wordhelp.words(line):
            yield word, 1

    def fun_combiner(key, value, buf, done, params):
        from wordhelp import add
        if done:
            return sorted(buf.items())
        add(buf, key, value)

    def fun_partition(key, nr_partitions, params):
        return len(wordhelp.words(key)[0]) % nr_partitions

    def fun_reduce(iter, params):
        import wordhelp
        buf = {}
        for word, count in iter:
            wordhelp.add(buf, word, count)
        return sorted(buf.items())
    """
    script += RUN % ("fun_map", "fun_combiner", "fun_partition", "fun_reduce")
    check(tmp_path, master, script, {"wordhelp.py": helper})


def test_functions_importing_a_package_of_the_job_folder(tmp_path, master) -> None:
    files = {
        "textkit/__init__.py": "from . import split\n",
        "textkit/split.py": "def words(line):\n    return line.split()\n",
        "textkit/agg/__init__.py": "",
        "textkit/agg/counting.py": """
            from ..split import words

            def add(buf, key, value):
                buf[key] = buf.get(key, 0) + value

            def totals(pairs):
                buf = {}
                for key, value in pairs:
                    add(buf, key, value)
                return buf

            def count_words(lines):
                return [(w, 1) for line in lines for w in words(line)]
            """,
    }
    script = """
    def fun_map(line, params):
        from textkit.agg.counting import count_words
        return count_words([line])

    def fun_combiner(key, value, buf, done, params):
        import textkit.agg.counting as counting
        if done:
            return sorted(buf.items())
        counting.add(buf, key, value)

    def fun_partition(key, nr_partitions, params):
        import textkit
        return len(textkit.split.words(key)[0]) % nr_partitions

    def fun_reduce(iter, params):
        from textkit.agg import counting
        return sorted(counting.totals(iter).items())
    """
    script += RUN % ("fun_map", "fun_combiner", "fun_partition", "fun_reduce")
    check(tmp_path, master, script, files)


def test_module_found_only_through_a_sys_path_entry(tmp_path, master) -> None:
    # The node has no such sys.path entry: 0.5 died with "No module named 'tiny_disco'".
    files = {"somedir/tiny_disco.py": FUNCTIONS}
    script = """
    sys.path.insert(0, "somedir")
    import tiny_disco
    """
    script += RUN % tuple(
        "tiny_disco.%s" % n for n in ("fun_map", "fun_combiner", "fun_partition", "fun_reduce")
    )
    check(tmp_path, master, script, files)


# -- what cannot be shipped fails in Job.run -------------------------------------------------
UNSHIPPABLE = {
    "open file": ("log = open('job.log', 'w')", "_io.TextIOWrapper"),
    "file opened for reading": ("log = open('script.py')", "an open file cannot be sent"),
    "lock": ("import threading; log = threading.Lock()", "lock"),
    "socket": ("import socket; log = socket.socket()", "socket"),
}


REPORTER = """
    from disco.error import JobShippingError

    def run_and_report(submit):
        try:
            submit()
        except JobShippingError as e:
            print(json.dumps({"error": str(e), "path": e.path}))
"""


def shipping_report(tmp_path, master, script: str) -> dict[str, str]:
    """Run ``script``; the ``JobShippingError`` its ``run_and_report`` call printed."""
    proc = run_script(tmp_path, master, REPORTER + script)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("what", sorted(UNSHIPPABLE))
def test_unshippable_object_fails_in_job_run(tmp_path, master, what: str) -> None:
    make, type_text = UNSHIPPABLE[what]
    script = """
    def make_map():
        %s
        def logging_map(line, params):
            log.write(line)
            yield line, 1
        return logging_map

    run_and_report(lambda: Job().run(input=INPUTS, map=make_map()))
    """ % (make,)
    report = shipping_report(tmp_path, master, script)
    assert report["path"] == (
        "Job.run argument 'map' -> closure variable 'log' of function "
        "make_map.<locals>.logging_map (%s, line 21)" % (tmp_path / "job" / "script.py")
    )
    assert report["error"].startswith("Cannot send the job to the nodes: " + report["path"])
    assert type_text in report["error"] and "cannot be pickled" in report["error"]
    assert Disco(master.url).joblist() == []  # nothing was submitted


def test_unshippable_global_of_a_job_class(tmp_path, master) -> None:
    script = """
    import threading
    LOCK = threading.Lock()

    class Locked(Job):
        def map(self, line, params):
            with LOCK:
                yield line, 1

    run_and_report(lambda: Locked().run(input=INPUTS))
    """
    report = shipping_report(tmp_path, master, script)
    assert report["path"] == (
        "the job class Locked -> attribute 'map' of class Locked -> global 'LOCK' used by "
        "function Locked.map (%s, line 23)" % (tmp_path / "job" / "script.py")
    )
    assert Disco(master.url).joblist() == []


def test_remote_traceback_names_the_script_and_its_lines(tmp_path, master) -> None:
    # by-value functions keep their file name, and the script travels in the job home
    script = """
    from disco.error import JobError

    def picky_map(line, params):
        if "end" in line:
            raise ValueError("cannot map %r" % line)
        yield line, 1

    try:
        Job().run(input=INPUTS, map=picky_map).wait()
    except JobError as e:
        print(json.dumps({"traceback": e.traceback, "message": e.message}))
    """
    proc = run_script(tmp_path, master, script)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["message"].startswith("ValueError: cannot map 'the end'\n")
    path = tmp_path / "job" / "script.py"
    assert (
        'File "%s", line 15, in picky_map\n    raise ValueError("cannot map %%r" %% line)\n' % path
    ) in report["traceback"]
