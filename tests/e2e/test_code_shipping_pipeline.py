"""Pipeline stage functions ship in every form too (issue 5, "Code shipping").

One script (run once for the module, as a subprocess, against its own master) submits
one two-stage pipeline word count per form: stage ``words`` (``split``) with
``init``/``process``/``done`` and stage ``total`` (``group_label``, ``combine=True``).
Each test checks the result of one form.  The script's directory is not visible to the
workers, as in ``test_code_shipping.py``.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator

import pytest

from disco.embedded import EmbeddedMaster
from tests.e2e.test_code_shipping import EXPECTED, LINES, run_script

pytestmark = pytest.mark.timeout(120)

STAGES = """
    def p_init(interface, params):
        return {"lines": 0}

    def p_words(interface, state, label, inp):
        for line in inp:
            line = line.decode() if isinstance(line, bytes) else line
            state["lines"] += 1
            for word in line.split():
                interface.output(len(word) % 2).add(word, 1)

    def p_done(interface, state):
        assert state["lines"] >= 1

    def p_total(interface, state, label, inp):
        totals = {}
        for word, count in inp:
            totals[word] = totals.get(word, 0) + count
        for word in sorted(totals):
            interface.output(label).add(word, totals[word])
"""

SCRIPT = """
import functools, json, sys
from disco.core import Job, result_iterator
from disco.worker.pipeline.worker import Stage, Worker

INPUTS = ["raw://" + line for line in %(lines)r]
RESULTS = {}

def count(form, init, words, done, total):
    pipeline = [("split", Stage("words", init=init, process=words, done=done)),
                ("group_label", Stage("total", process=total, combine=True))]
    job = Job(worker=Worker()).run(input=INPUTS, pipeline=pipeline)
    RESULTS[form] = dict(result_iterator(job.wait()))

# __main__
%(stages)s
count("main", p_init, p_words, p_done, p_total)

# a notebook cell
cell = {"__name__": "notebook_cell_3"}
exec(compile(%(stages)r, "<cell 3>", "exec"), cell)
count("notebook", cell["p_init"], cell["p_words"], cell["p_done"], cell["p_total"])

# lambdas
count(
    "lambda",
    lambda interface, params: None,
    lambda interface, state, label, inp: [
        interface.output(len(w) %% 2).add(w, 1)
        for line in inp
        for w in (line.decode() if isinstance(line, bytes) else line).split()
    ],
    lambda interface, state: None,
    lambda interface, state, label, inp: [
        interface.output(label).add(k, sum(v for _, v in group))
        for k, group in __import__("itertools").groupby(sorted(inp), key=lambda kv: kv[0])
    ],
)

# closures over local variables
def make_stages(weight):
    def words(interface, state, label, inp):
        for line in inp:
            line = line.decode() if isinstance(line, bytes) else line
            for word in line.split():
                interface.output(0).add(word, weight)
    def total(interface, state, label, inp):
        sums = {}
        for word, value in inp:
            sums[word] = sums.get(word, 0) + value // weight
        for word, value in sums.items():
            interface.output(label).add(word, value)
    return words, total
c_words, c_total = make_stages(weight=5)
count("closure", None, c_words, None, c_total)

# functools.partial
def sep_init(interface, params, start):
    return {"lines": start}
def sep_words(interface, state, label, inp, sep):
    for line in inp:
        line = line.decode() if isinstance(line, bytes) else line
        state["lines"] += 1
        for word in line.split(sep):
            interface.output(0).add(word, 1)
count("partial", functools.partial(sep_init, start=0), functools.partial(sep_words, sep=" "),
      functools.partial(p_done), functools.partial(p_total))

# decorated (functools.wraps)
def traced(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)
    return wrapper
count("decorated", traced(p_init), traced(p_words), traced(p_done), traced(p_total))

# bound methods
class Counting:
    def __init__(self, step):
        self.step = step
    def words(self, interface, state, label, inp):
        p_words(interface, {"lines": 0}, label, inp)
    def total(self, interface, state, label, inp):
        p_total(interface, state, label, inp)
counter = Counting(step=1)
count("bound", None, counter.words, None, counter.total)

# a Job subclass of the script
class PipeCount(Job):
    Worker = Worker
    pipeline = [("split", Stage("words", init=p_init, process=p_words, done=p_done)),
                ("group_label", Stage("total", process=p_total, combine=True))]
RESULTS["job_subclass"] = dict(result_iterator(PipeCount().run(input=INPUTS).wait()))

# a sibling module imported by the stage functions
def s_words(interface, state, label, inp):
    import pipehelp
    pipehelp.words(interface, inp)
def s_total(interface, state, label, inp):
    from pipehelp import total
    total(interface, label, inp)
count("sibling", None, s_words, None, s_total)

# a package of the job's folder
def k_words(interface, state, label, inp):
    from pipekit.stages.split import words
    words(interface, inp)
def k_total(interface, state, label, inp):
    import pipekit.stages.sums as sums
    sums.total(interface, label, inp)
count("package", None, k_words, None, k_total)

# a module found only through a sys.path entry the node does not have
sys.path.insert(0, "elsewhere")
import tiny_pipe
count("sys_path", tiny_pipe.p_init, tiny_pipe.p_words, tiny_pipe.p_done, tiny_pipe.p_total)

print(json.dumps(RESULTS))
"""

HELPER = """
def words(interface, inp):
    for line in inp:
        line = line.decode() if isinstance(line, bytes) else line
        for word in line.split():
            interface.output(1).add(word, 1)

def total(interface, label, inp):
    sums = {}
    for word, value in inp:
        sums[word] = sums.get(word, 0) + value
    for word, value in sums.items():
        interface.output(label).add(word, value)
"""

FILES = {
    "pipehelp.py": HELPER,
    "pipekit/__init__.py": "",
    "pipekit/stages/__init__.py": "from . import split\n",
    "pipekit/stages/split.py": "from pipehelp import words\n",
    "pipekit/stages/sums.py": "from ..stages import split\nfrom pipehelp import total\n",
    "elsewhere/tiny_pipe.py": textwrap.dedent(STAGES),
}

FORMS = [
    "main",
    "notebook",
    "lambda",
    "closure",
    "partial",
    "decorated",
    "bound",
    "job_subclass",
    "sibling",
    "package",
    "sys_path",
]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Iterator[dict[str, dict[str, int]]]:
    base = tmp_path_factory.mktemp("pipeline_shipping")
    script = SCRIPT % {"lines": LINES, "stages": textwrap.dedent(STAGES)}
    with EmbeddedMaster(root=base / "disco", export_env=False) as master:
        proc = run_script(base, master, script, FILES)
    assert proc.returncode == 0, proc.stderr[-4000:]
    yield json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("form", FORMS)
def test_stage_functions(results: dict[str, dict[str, int]], form: str) -> None:
    assert results[form] == EXPECTED
