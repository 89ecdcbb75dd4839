"""Job functions defined in a pytest-collected module ship and run (issue 11.2).

Pytest rewrites the ``assert`` statements of this module and adds the globals
``@pytest_ar`` and ``@py_builtins`` that the rewritten code reads as ``@pytest_ar.<attr>``.
They are not importable module names, so the module finder must not require them.
"""

from __future__ import annotations

from typing import Any

from disco.core import Job, result_iterator
from disco.worker.modutil import find_modules, parse_function
from disco.worker.pipeline.worker import Stage
from disco.worker.pipeline.worker import Worker as PipelineWorker


def checked_map(line: str, params: Any) -> Any:
    assert isinstance(line, str), line
    for word in line.split():
        yield word, 1


def checked_reduce(iter: Any, out: Any, params: Any) -> None:
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        total = sum(counts)
        assert total > 0, (word, total)
        out.add(word, total)


def checked_process(interface: Any, state: Any, label: Any, inp: Any) -> None:
    for line in inp:
        assert line, "empty record"
        for word in line.split():
            interface.output(0).add(word, 1)


def test_assertion_rewriting_is_on_in_this_module() -> None:
    assert "@pytest_ar" in globals() and "@py_builtins" in globals()
    assert any(name == "@pytest_ar" for name, _ in _scanned(checked_map))
    assert parse_function(checked_map) == []
    assert find_modules([checked_map, checked_reduce]) == []


def _scanned(fn: Any) -> list[tuple[str, str]]:
    from disco.worker.modutil import scanner

    return list(scanner(fn.__code__))


def test_classic_job_defined_in_a_test_module_runs(master: Any) -> None:
    job = Job(master=master.url).run(
        input=["raw://the cat", "raw://the dog"], map=checked_map, reduce=checked_reduce
    )
    assert sorted(result_iterator(job.wait())) == [("cat", 1), ("dog", 1), ("the", 2)]


def test_pipeline_job_defined_in_a_test_module_runs(master: Any) -> None:
    pipeline = [("split", Stage("words", process=checked_process))]
    job = Job(master=master.url, worker=PipelineWorker()).run(
        input=["raw://a b", "raw://b"], pipeline=pipeline
    )
    assert sorted(result_iterator(job.wait())) == [("a", 1), ("b", 1), ("b", 1)]
