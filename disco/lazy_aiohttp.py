"""Import aiohttp's web server without its HTTP client (issue 13, tiny job).

``aiohttp/__init__.py`` imports the whole HTTP client (``aiohttp.client``, its connector,
tracing, cookie jar, multipart, digest auth...) whether or not a program uses it: about
half of aiohttp's import time, paid at every start of a master that serves and may never
make a client request.  ``import_aiohttp_web()`` imports ``aiohttp.web`` with the
``aiohttp`` package's ``__init__`` not yet run: the package is put in ``sys.modules`` as
a ``LazyPackage`` (a module with the real spec, path and ``__version__``), so importing its
submodules (``aiohttp.web``, ``aiohttp.hdrs``...) works as usual, and the first use of any
other name of the package (``aiohttp.ClientSession``, ``aiohttp.ClientTimeout``, ``from
aiohttp import ClientError``, ``dir(aiohttp)``) runs the real ``__init__`` in that module,
once, under a lock, with the CA bundle of its default SSL contexts loaded at first use
(``disco.lazy_ca``).  From then on it is the ordinary aiohttp package.

A program that imported aiohttp before gets it as it is.  A client submodule imported
by its full name while the package waits (``import aiohttp.connector``, which aiohttp
itself never does before its ``__init__``) builds its SSL contexts as plain aiohttp does,
loading the CA bundle then.  docs/decisions.md "aiohttp's
client imported at first use by the masters".
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import threading
import types
from typing import Any

from disco.lazy_ca import deferring_ca, import_deferring_ca

PACKAGE = "aiohttp"

_LOCK = threading.RLock()
_loading: set[str] = set()  # packages whose __init__ runs now (under _LOCK)
_VERSION = re.compile(r"""^__version__\s*=\s*["']([^"']+)["']""", re.M)


class LazyPackage(types.ModuleType):
    """A package whose ``__init__`` runs at the first use of a name that is not one of
    its submodules (then the module becomes an ordinary module)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__all__":
            raise AttributeError("module %r has no attribute %r" % (self.__name__, name))
        if name.isidentifier() and not name.startswith("_"):
            sub = _submodule(self.__name__, name)
            if sub is not None:
                return sub
        load(self)
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(
                "module %r has no attribute %r" % (self.__name__, name)
            ) from None

    def __dir__(self) -> list[str]:
        load(self)
        return list(self.__dict__)


def load(module: types.ModuleType) -> None:
    """Run the real ``__init__`` of a ``LazyPackage`` in it (once; a nested call made
    by that ``__init__`` itself returns at once, as for a module being imported)."""
    with _LOCK:
        if not isinstance(module, LazyPackage) or module.__name__ in _loading:
            return
        spec = module.__spec__
        assert spec is not None and spec.loader is not None
        _loading.add(module.__name__)
        try:
            code = spec.loader.get_code(module.__name__)  # type: ignore[attr-defined]
            with deferring_ca():
                exec(code, module.__dict__)
            module.__class__ = types.ModuleType
        finally:
            _loading.discard(module.__name__)


def _submodule(package: str, name: str) -> types.ModuleType | None:
    full = package + "." + name
    module = sys.modules.get(full)
    if module is not None:
        return module
    if importlib.util.find_spec(full) is None:
        return None
    with deferring_ca():  # e.g. ``from aiohttp import connector``: its SSL contexts
        return importlib.import_module(full)


def install() -> types.ModuleType | None:
    """Put aiohttp in ``sys.modules`` as a ``LazyPackage`` unless it is imported already
    (or cannot be: then the normal import happens later).  Returns the lazy package."""
    with _LOCK:
        if PACKAGE in sys.modules:
            return None
        spec = importlib.util.find_spec(PACKAGE)
        loader = spec.loader if spec is not None else None
        if spec is None or not spec.submodule_search_locations or loader is None:
            return None
        try:
            source = loader.get_source(PACKAGE)  # type: ignore[attr-defined]
        except (AttributeError, ImportError, OSError):
            return None
        found = _VERSION.search(source or "")
        if found is None:  # not the layout this relies on: import it normally
            return None
        module = importlib.util.module_from_spec(spec)
        module.__version__ = found.group(1)  # type: ignore[attr-defined]
        module.__class__ = LazyPackage
        sys.modules[PACKAGE] = module
        return module


def import_aiohttp_web() -> types.ModuleType:
    """``aiohttp.web``, imported without aiohttp's client if aiohttp is not imported yet,
    and with the CA bundle of aiohttp's default SSL contexts loaded at first use."""
    install()
    return import_deferring_ca(PACKAGE + ".web")


__all__ = ["LazyPackage", "import_aiohttp_web", "install", "load"]
