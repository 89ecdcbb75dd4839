"""Find the modules job functions depend on (library.md section 14, 19.3).

``parse_function`` scans bytecode with ``dis`` for ``<global>.<attr>`` uses (21.15), and
``locate_modules`` uses ``importlib`` to tell local modules (under ``user_paths()``, shipped
with the job as ``(name, path)``) from installed ones (imported on the node by name).
"""

from __future__ import annotations

import builtins
import dis
import functools
import importlib.util
import keyword
import os
import types
from collections.abc import Iterable, Iterator
from typing import Any

from disco.error import DiscoError
from disco.worker.injected import INJECTED_NAMES

__all__ = [
    "ModUtilImportError",
    "find_modules",
    "is_module_name",
    "locate_modules",
    "parse_function",
    "recurse_module",
    "scanner",
    "user_paths",
]

_ATTR_OPS = frozenset(("LOAD_ATTR", "LOAD_METHOD"))


class ModUtilImportError(DiscoError, ImportError):
    """A module used by a job function cannot be found on this machine."""

    def __init__(self, error: Any, function: Any) -> None:
        super().__init__(error, function)
        self.error = error
        self.function = function

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.error, self.function))

    def __str__(self) -> str:
        name = getattr(self.function, "__name__", repr(self.function))
        return (
            "%s: could not find a module used by the function %s. Maybe it is a typo; "
            "see the documentation of the required_modules parameter to include modules "
            "by hand." % (self.error, name)
        )


def user_paths() -> set[str]:
    """Absolute paths of ``$PYTHONPATH`` entries, plus the current directory (``''``)."""
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep) + [""]
    return {os.path.abspath(p) for p in entries}


def scanner(code: types.CodeType) -> Iterator[tuple[str, str]]:
    """``(global, attr)`` for every ``LOAD_GLOBAL g`` followed by ``LOAD_ATTR``/``LOAD_METHOD``
    in ``code`` and in the code objects nested in it (lambdas, inner functions)."""
    prev: dis.Instruction | None = None
    for ins in dis.get_instructions(code):
        if prev is not None and prev.opname == "LOAD_GLOBAL" and ins.opname in _ATTR_OPS:
            yield str(prev.argval), str(ins.argval)
        prev = ins
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from scanner(const)


def is_module_name(name: str) -> bool:
    """Can ``name`` be a top-level module name at all: an identifier, not a keyword?

    Tools put other names into module globals (pytest's assertion rewriting adds
    ``@pytest_ar`` and ``@py_builtins``); those are never required modules.
    """
    return name.isidentifier() and not keyword.iskeyword(name)


def _module_candidate(name: str, fn_globals: dict[str, Any]) -> str | None:
    """The module that the global ``name`` of a function stands for, or ``None``.

    A global bound to a module is that module (by its real name when ``name`` is an
    alias such as ``np``); a global bound to anything else is not a module; a name
    that is neither a global, a builtin nor an injected name is taken for a module
    the node must import, as 0.5 does, so a missing one fails at submission.
    """
    if not is_module_name(name):
        return None
    if name in fn_globals:
        value = fn_globals[name]
        if not isinstance(value, types.ModuleType):
            return None
        real = getattr(value, "__name__", name)
        if real != name and is_module_name(real.split(".")[0]) and not _findable(name):
            return real
        return name
    if hasattr(builtins, name) or name in INJECTED_NAMES:
        return None
    return name


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def parse_function(function: Any) -> list[str]:
    """Names of modules the function uses as ``module.attr`` (heuristic, 14)."""
    while isinstance(function, functools.partial):
        function = function.func
    function = getattr(function, "__func__", function)  # bound methods
    code = getattr(function, "__code__", None)
    if code is None:
        return []
    fn_globals = getattr(function, "__globals__", {})
    names = (_module_candidate(name, fn_globals) for name, _attr in scanner(code))
    return [n for n in dict.fromkeys(names) if n is not None]


def _local_file(name: str) -> str | None:
    """The source file of ``name`` if it is a single-file module under ``user_paths()``."""
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ImportError("No module named %s" % name, name=name)
    origin = spec.origin
    if not origin or not os.path.isfile(origin) or spec.submodule_search_locations:
        return None
    if os.path.dirname(os.path.abspath(origin)) in user_paths():
        return origin
    return None


def recurse_module(module: str, path: str) -> dict[str, str]:
    """``{name: file}`` of the local modules (under ``user_paths()``) imported from ``path``."""
    import modulefinder  # only for jobs whose functions live in local modules

    finder = modulefinder.ModuleFinder(path=sorted(user_paths()))
    finder.run_script(path)
    paths = user_paths()
    found = {}
    for name, mod in finder.modules.items():
        file = getattr(mod, "__file__", None)
        if name == "__main__" or name == module or not file:
            continue
        if os.path.dirname(os.path.abspath(file)) in paths and os.path.isfile(file):
            found[name] = file
    return found


def locate_modules(
    modules: Iterable[str], recurse: bool = True, include_sys: bool = False
) -> list[tuple[str, str | None]]:
    """``(name, path)`` of local modules (and their local imports when ``recurse``);
    ``(name, None)`` for the others when ``include_sys``."""
    found: dict[str, str | None] = {}
    for name in modules:
        path = _local_file(name)
        if path is not None:
            found[name] = path
            if recurse:
                found.update(recurse_module(name, path))
        elif include_sys:
            found.setdefault(name, None)
    return list(found.items())


def find_modules(
    functions: Iterable[Any],
    send_modules: bool = True,
    job_path: str | None = None,
    recurse: bool = True,
    exclude: Iterable[str] = (),
) -> list[Any]:
    """The ``required_modules`` list for ``functions`` (14): ``(name, path)`` for local
    modules shipped with the job, plain names for the others; sorted by name."""
    excluded = set(exclude)
    modules: dict[str, str | None] = {}
    for function in functions:
        names = [n for n in parse_function(function) if n not in excluded]
        if send_modules:
            try:
                modules.update(locate_modules(names, recurse, include_sys=True))
            except ImportError as e:
                raise ModUtilImportError(e, function)
        else:
            for name in names:
                modules.setdefault(name, None)
    if job_path and os.path.dirname(os.path.abspath(job_path)) in user_paths():
        name = os.path.splitext(os.path.basename(job_path))[0]
        modules[name] = job_path
        if recurse:
            modules.update(recurse_module(name, job_path))
    return [name if path is None else (name, path) for name, path in sorted(modules.items())]
