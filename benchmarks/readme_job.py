#!/usr/bin/env python3
"""The README's "Your first job", run as it stands over a large file (issue 13).

    python benchmarks/readme_job.py INPUT OUTPUT [--phases FILE] [--readme README.md]

The job is not copied here: the first ``python`` block of README.md is read, its
functions are defined from it, and its ``Job(...).run(...)`` call is made with the same
keyword arguments, with ``input=`` replaced by the one ``file://`` URL of INPUT.  So the
figure ``make bench`` reports is the one of the job the README shows.  The client reads
the results with ``result_iterator`` and writes ``word<TAB>count`` lines sorted by word,
the peers' format (the README prints only the three most frequent words).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```python\n(.*?)^```[ \t]*$", re.M | re.S)


def first_block(readme: Path) -> str:
    """The source of the first ``python`` block of ``readme``."""
    m = FENCE.search(readme.read_text(encoding="utf-8"))
    if m is None:
        raise SystemExit("%s has no python block" % readme)
    return m.group(1)


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)


def _run_call(tree: ast.Module) -> ast.Call:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "run":
                return node
    raise SystemExit("the README's first block has no Job(...).run(...) call")


def readme_job(readme: Path) -> tuple[dict[str, Any], str]:
    """``(keyword arguments of the README's run call but input, its source)``, the
    functions they name defined from the block (its ``__main__`` part left out)."""
    source = first_block(readme)
    tree = ast.parse(source)
    call = _run_call(tree)
    body = ast.Module([n for n in tree.body if not _is_main_guard(n)], type_ignores=[])
    namespace: dict[str, Any] = {"__name__": "__main__"}  # pickled by value, like a script's
    exec(compile(body, str(readme), "exec"), namespace)
    kwargs = {}
    for kw in call.keywords:
        if kw.arg and kw.arg != "input":
            kwargs[kw.arg] = eval(compile(ast.Expression(kw.value), str(readme), "eval"), namespace)
    return kwargs, ast.unparse(call)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--phases", metavar="FILE", help="write the seconds of each phase as JSON")
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--master", help="master URL (default: the embedded default master)")
    args = ap.parse_args(argv)
    from harness import master_url

    t0 = time.perf_counter()
    kwargs, shown = readme_job(Path(args.readme))
    from disco.core import Job, result_iterator

    master = master_url(args.master)
    t1 = time.perf_counter()
    url = Path(args.input).absolute().as_uri()
    job = Job(master=master).run(input=[url], **kwargs)
    results = job.wait()
    t2 = time.perf_counter()
    counts: dict[Any, int] = {}
    for word, count in result_iterator(results):
        counts[word] = counts.get(word, 0) + count
    with open(args.output, "w", encoding="utf-8") as f:
        f.writelines("%s\t%d\n" % (w, c) for w, c in sorted(counts.items()))
    t4 = time.perf_counter()
    job.purge()
    if args.phases:
        phases = {
            "master_s": round(t1 - t0, 3),
            "job_s": round(t2 - t1, 3),
            "read_write_s": round(t4 - t2, 3),
            "run_call": shown,
        }
        Path(args.phases).write_text(json.dumps(phases) + "\n")
    print("README job (%s): %.2f s" % (shown, t4 - t0), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
