"""Shipping the job's code to nodes where none of the user's code is installed.

``collect(job, jobargs)`` pickles the job the way its jobdata will be pickled, with a
pickler that writes down every module the pickle refers to by name (functions and
classes of importable modules, module objects) and every module the by-value functions
import in their bodies.  Those that are *user modules* (not part of Python, not
installed in site-packages, not Disco) are followed through their own ``import``
statements (read with ``ast``), and the source files of all of them go into the job
home under ``lib/`` (which is on the workers' ``PYTHONPATH``) at their package paths.
So a job can use a function of its script's ``__main__``, of a sibling module, of a
package next to the script, or of a module found only through a ``sys.path`` entry the
node does not have.  Functions and classes of ``__main__`` and of notebook-style
namespaces are pickled by value by ``cloudpickle``.

If the pickle fails, ``locate`` walks the job's parameters down to the object that
cannot be pickled (an open file, a lock, a socket ...) and ``collect`` raises
``JobShippingError`` naming it and where it was found, before anything is submitted.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib.util
import io
import os
import site
import sys
import types
import weakref
from collections.abc import Iterator
from typing import Any

from disco.dPickle import Pickler, dumps
from disco.error import JobShippingError
from disco.failure import short_repr as _short

_MAX_DEPTH = 12


# -- which modules are the user's ------------------------------------------------------------
@functools.cache
def _installed_dirs() -> tuple[str, ...]:
    """Directories of this Python's standard library and site-packages."""
    import sysconfig

    dirs: set[str] = set()
    for scheme_vars in (None, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        paths = sysconfig.get_paths(vars=scheme_vars) if scheme_vars else sysconfig.get_paths()
        for key in ("stdlib", "platstdlib", "purelib", "platlib"):
            if paths.get(key):
                dirs.add(paths[key])
    dirs.update(_site_dirs())
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs)


def _site_dirs() -> list[str]:
    dirs: list[str] = []
    try:
        dirs.extend(site.getsitepackages())
    except AttributeError:  # some embedded interpreters lack it
        pass
    user_site = site.getusersitepackages() if hasattr(site, "getusersitepackages") else None
    if isinstance(user_site, str):
        dirs.append(user_site)
    return dirs


@functools.cache
def _known_installed() -> tuple[str, ...]:
    """Installed directories known without ``sysconfig``: the site-packages directories
    and the standard library's (where ``os`` is)."""
    dirs = [*_site_dirs(), os.path.dirname(os.__file__)]
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs)


@functools.cache
def _install_roots() -> tuple[str, ...]:
    """Directories every installed directory is under: this Python's prefixes, the user
    base and the site-packages directories."""
    roots = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    user_base = getattr(site, "USER_BASE", None)
    if isinstance(user_base, str):
        roots.add(user_base)
    roots.update(_site_dirs())
    return tuple(os.path.join(os.path.realpath(d), "") for d in roots if d)


def _installed(real: str) -> bool:
    """Is the real path ``real`` in the standard library or site-packages?

    Answered without ``sysconfig`` (whose first use costs about 1.5 ms: its configuration
    data) for a file in site-packages or next to ``os``, and, on Linux, where every
    ``sysconfig`` scheme is under a prefix or the user base, for a path outside all of
    them (a user's script or module: the usual case)."""
    if real.startswith(_known_installed()):
        return True
    if sys.platform.startswith("linux") and not real.startswith(_install_roots()):
        return False
    return real.startswith(_installed_dirs())


def user_module_file(name: str) -> str | None:
    """The source file of module ``name`` if it is a user module, else ``None``.

    User modules are importable here, have a file, and are neither part of the
    standard library, nor installed in site-packages, nor Disco itself.
    """
    top = name.partition(".")[0]
    if not name or top in ("__main__", "disco"):
        return None
    module = sys.modules.get(name)
    if module is not None:
        path = getattr(module, "__file__", None)
    elif top in sys.stdlib_module_names:
        return None  # not imported here: the standard library's (no search needed)
    else:
        try:
            spec = importlib.util.find_spec(name)
        except Exception:  # finding a submodule imports its package, which may fail
            return None
        path = spec.origin if spec is not None and spec.has_location else None
    if not path or not os.path.isfile(path):
        return None
    if _installed(os.path.realpath(path)):
        return None
    return path


def main_script() -> str | None:
    """The file of the running script (``__main__``) if it is the user's: shipped so
    tracebacks of its functions, which travel by value, show their lines."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if not path or not os.path.isfile(path) or not path.endswith(".py"):
        return None
    real = os.path.realpath(path)
    disco_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "")
    if _installed(real) or real.startswith(disco_dir):
        return None
    return os.path.abspath(path)


def ship_path(name: str, path: str) -> str:
    """Where module ``name`` (from file ``path``) goes in the job home: ``lib/<pkg>/<file>``."""
    parts = name.split(".")
    base = os.path.basename(path)
    if base.startswith("__init__."):
        return "/".join(["lib", *parts, base])
    return "/".join(["lib", *parts[:-1], base])


# -- finding the modules ---------------------------------------------------------------------
def _resolve(name: str, level: int, package: str | None) -> str | None:
    if level == 0:
        return name
    if not package:
        return None
    base = package.rsplit(".", level - 1)[0] if level > 1 else package
    return "%s.%s" % (base, name) if name else base


def _code_imports(code: types.CodeType, package: str | None) -> Iterator[str]:
    """Absolute names imported by ``import``/``from`` statements in ``code`` (and nested)."""
    consts: list[Any] = []
    for ins in dis.get_instructions(code):
        if ins.opname == "IMPORT_NAME" and len(consts) >= 2:
            level, fromlist = consts[-2], consts[-1]
            name = _resolve(ins.argval, level if isinstance(level, int) else 0, package)
            if name:
                yield name
                for sub in fromlist or ():
                    if sub != "*":
                        yield "%s.%s" % (name, sub)
        consts.append(ins.argval if ins.opname == "LOAD_CONST" else None)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_imports(const, package)


#: ``(path, mtime_ns, size)`` -> absolute names imported in that file: a file is read and
#: parsed again only when it changed (repeated jobs of one script do not redo it).
_FILE_IMPORTS: dict[tuple[str, int, int], list[str]] = {}


def parse_source(source: bytes, path: str) -> ast.Module:
    """``ast.parse``, tried again when CPython 3.11 reports "AST constructor recursion
    depth mismatch": the ast module's recursion counter is shared by all threads, so a
    parse in another thread at the same moment (3.11's traceback formatting parses
    source lines, e.g. when an embedded master logs an error) spoils this one's count.
    The source is fine; a second parse succeeds."""
    for attempt in range(5):
        try:
            return ast.parse(source, path)
        except SystemError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _file_imports(name: str, path: str) -> list[str]:
    """Absolute names imported anywhere in the source file of module ``name``."""
    try:
        st = os.stat(path)
    except OSError:
        return []
    key = (path, st.st_mtime_ns, st.st_size)
    found = _FILE_IMPORTS.get(key)
    if found is not None:
        return found
    is_package = os.path.basename(path).startswith("__init__.")
    package = name if is_package else name.rpartition(".")[0]
    found = []
    try:
        with open(path, "rb") as f:
            tree = parse_source(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        tree = None
    for node in _import_statements(tree) if tree is not None else ():
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        else:
            base = _resolve(node.module or "", node.level, package)
            if base:
                found.append(base)
                found.extend("%s.%s" % (base, a.name) for a in node.names if a.name != "*")
    _FILE_IMPORTS[key] = found
    return found


#: The fields of statements that hold statements (``import`` is a statement: expressions
#: never hold one, so they are not walked; ``ast.walk`` visited every node, 10x slower).
_STATEMENT_FIELDS = ("body", "orelse", "finalbody", "handlers", "cases")


def _import_statements(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """The ``import`` and ``from ... import`` statements of ``tree``, at any depth
    (functions, classes, ``if``/``try``/``with``/``match`` blocks), in source order."""
    todo: list[Any] = list(reversed(tree.body))
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for field in _STATEMENT_FIELDS:
            children = getattr(node, field, None)
            if children:
                todo.extend(reversed(children))


class _RecordingPickler(Pickler):
    """A cloudpickle pickler that writes down the modules the pickle depends on."""

    def __init__(self, file: Any) -> None:
        super().__init__(file, protocol=-1)
        self.modules: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, types.ModuleType):
            self.modules.add(obj.__name__)
        elif isinstance(obj, (types.FunctionType, type)):
            module = getattr(obj, "__module__", None)
            if isinstance(module, str):
                self.modules.add(module)
            code = getattr(obj, "__code__", None)
            if code is not None and _by_value(obj):
                package = (getattr(obj, "__globals__", None) or {}).get("__package__")
                self.modules.update(_imports_of(code, package))
        return super().reducer_override(obj)


def _by_value(fn: Any) -> bool:
    """Will cloudpickle pickle ``fn`` by value (so its imports are not in a module file)?"""
    module = getattr(fn, "__module__", None)
    if module is None or module == "__main__" or module not in sys.modules:
        return True
    if module.partition(".")[0] == "disco":
        return False
    qualname = getattr(fn, "__qualname__", "")
    return "<locals>" in qualname or "<lambda>" in qualname


@functools.lru_cache(maxsize=4096)
def _imports_of(code: types.CodeType, package: str | None) -> frozenset[str]:
    return frozenset(_code_imports(code, package))


def user_modules(names: set[str]) -> dict[str, str]:
    """``{name: file}`` of the user modules among ``names``, their parent packages and
    every user module they import, transitively."""
    found: dict[str, str] = {}
    todo = list(names)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = user_module_file(name)
        if path is None:
            continue
        found[name] = path
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
        todo.extend(_file_imports(name, path))
    return found


# job -> (jobargs, pickled (job, jobargs)): ``collect``'s pickle, reused as the jobdata
_PICKLED: weakref.WeakKeyDictionary[Any, tuple[dict[str, Any], bytes]] = weakref.WeakKeyDictionary()


#: ``jobargs`` left out of the jobdata: a task gets its inputs from the master (INPUT), and
#: every task unpickles the whole jobdata, so a job of n inputs cost O(n) per task
#: (docs/decisions.md, "The job's inputs are not in its jobdata").
CLIENT_ONLY_JOBARGS = ("input",)


def node_jobargs(jobargs: dict[str, Any]) -> dict[str, Any]:
    """The ``jobargs`` pickled into the jobdata for the nodes."""
    return {k: v for k, v in jobargs.items() if k not in CLIENT_ONLY_JOBARGS}


def collect(job: Any, jobargs: dict[str, Any]) -> dict[str, str]:
    """``{module name: file}`` to ship for ``(job, jobargs)``; raises ``JobShippingError``
    naming the first object found that cannot be pickled."""
    out = io.BytesIO()
    pickler = _RecordingPickler(out)
    try:
        pickler.dump((job, node_jobargs(jobargs)))
    except Exception as exc:
        raise shipping_error(job, jobargs, exc) from exc
    try:
        _PICKLED[job] = (dict(jobargs), out.getvalue())
    except TypeError:  # a job class that cannot be weakly referenced
        pass
    return user_modules(pickler.modules)


def pickled_jobdata(job: Any, jobargs: dict[str, Any]) -> bytes | None:
    """The pickle ``collect`` made of exactly these ``(job, jobargs)``, once, or ``None``."""
    try:
        cached = _PICKLED.pop(job, None)
    except TypeError:
        return None
    if cached is None:
        return None
    args, data = cached
    same = args.keys() == jobargs.keys() and all(args[k] is jobargs[k] for k in args)
    return data if same else None


# -- what cannot be pickled --------------------------------------------------------------------
def _describe_function(fn: Any) -> str:
    code = getattr(fn, "__code__", None)
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    if code is None:
        return "function %s" % name
    return "function %s (%s, line %d)" % (name, code.co_filename, code.co_firstlineno)


def _global_names(code: types.CodeType) -> Iterator[str]:
    yield from code.co_names
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _global_names(const)


def _children(obj: Any) -> Iterator[tuple[str, Any]]:
    """``(description, child)`` of the objects ``obj`` holds, for locating failures."""
    if isinstance(obj, functools.partial):
        yield "the function of %r" % obj, obj.func
        for i, arg in enumerate(obj.args):
            yield "argument %d of functools.partial" % i, arg
        for key, arg in (obj.keywords or {}).items():
            yield "keyword argument %r of functools.partial" % key, arg
    elif isinstance(obj, types.MethodType):
        yield "the object method %s is bound to" % obj.__func__.__qualname__, obj.__self__
        yield "the function of method %s" % obj.__func__.__qualname__, obj.__func__
    elif isinstance(obj, types.FunctionType):
        what = _describe_function(obj)
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or (), strict=False):
            try:
                yield "closure variable %r of %s" % (name, what), cell.cell_contents
            except ValueError:  # an empty cell
                continue
        fn_globals = obj.__globals__
        for name in dict.fromkeys(_global_names(code)):
            if name in fn_globals:
                yield "global %r used by %s" % (name, what), fn_globals[name]
        for i, value in enumerate(obj.__defaults__ or ()):
            yield "default argument %d of %s" % (i, what), value
        for key, value in (obj.__kwdefaults__ or {}).items():
            yield "default of keyword argument %r of %s" % (key, what), value
        if hasattr(obj, "__wrapped__"):
            yield "the function wrapped by %s" % what, obj.__wrapped__
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield "key %r" % (key,), value
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for i, value in enumerate(obj):
            yield "item %d" % i, value
    elif isinstance(obj, type):
        for key, value in vars(obj).items():
            if not (key.startswith("__") and key.endswith("__")):
                value = getattr(value, "__func__", value)  # static and class methods
                yield "attribute %r of class %s" % (key, obj.__qualname__), value
    elif not isinstance(obj, types.ModuleType):
        state = getattr(obj, "__dict__", None)
        getstate = getattr(obj, "__getstate__", None)
        if callable(getstate):
            try:
                state = getstate()
            except Exception:
                pass
        if isinstance(state, dict):
            for key, value in state.items():
                yield "attribute %r of %s" % (key, _short(obj)), value


def _pickles(obj: Any) -> Exception | None:
    try:
        dumps(obj)
    except Exception as exc:
        return exc
    return None


def locate(label: str, obj: Any, depth: int = 0) -> tuple[list[str], Any, Exception] | None:
    """The path to the innermost object below ``obj`` that cannot be pickled."""
    exc = _pickles(obj)
    if exc is None:
        return None
    if depth < _MAX_DEPTH:
        for child_label, child in _children(obj):
            found = locate(child_label, child, depth + 1)
            if found is not None:
                return [label, *found[0]], found[1], found[2]
    return [label], obj, exc


def _roots(job: Any, jobargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    worker = getattr(job, "worker", None)
    for key, value in jobargs.items():
        yield "Job.run argument %r" % key, value
    if isinstance(worker, dict):
        for key, value in worker.items():
            yield "job parameter %r" % key, value
    state = job.__getstate__() if hasattr(job, "__getstate__") else vars(job)
    for key, value in (state or {}).items():
        if key != "worker":
            yield "attribute %r of job %s" % (key, type(job).__qualname__), value
    yield "the job class %s" % type(job).__qualname__, type(job)


def shipping_error(job: Any, jobargs: dict[str, Any], exc: Exception) -> JobShippingError:
    """``JobShippingError`` for a job whose pickling raised ``exc``."""
    for label, value in _roots(job, jobargs):
        found = locate(label, value)
        if found is not None:
            path, obj, error = found
            where = " -> ".join(path)
            return JobShippingError(
                "Cannot send the job to the nodes: %s is %s, which cannot be pickled (%s: %s). "
                "Open files, locks, sockets and connections cannot travel to other "
                "machines: create them inside the job's functions (e.g. in map_init) "
                "from something that can (a path, an address)."
                % (where, _short(obj), type(error).__name__, error),
                where,
                obj,
            )
    return JobShippingError("Cannot send the job to the nodes: %s: %s" % (type(exc).__name__, exc))
