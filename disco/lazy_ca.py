"""Import a module (aiohttp) with the default CA certificates of its SSL contexts loaded at
their first use instead of at import.

``import aiohttp`` builds two default client SSL contexts at import time; each reads and
parses the system CA bundle (``set_default_verify_paths``): about 40 ms of CPU on a small
machine, a tenth of a whole tiny job on the embedded master, for contexts that a master
serving ``http://`` never uses.  ``import_deferring_ca`` imports a module while
``set_default_verify_paths`` only records the contexts that call it; afterwards those
contexts become ``DeferredCAContext`` (a subclass of ``ssl.SSLContext``, same layout), which
loads the default CA certificates before anything can use or show them: ``wrap_socket``,
``wrap_bio`` (asyncio, aiohttp), ``get_ca_certs``, ``cert_store_stats``.  A connection made
with one is verified exactly as with the eager context.

Nothing else changes: ``ssl.SSLContext`` stays the standard class (aiohttp keeps it in
``isinstance`` checks at import), and the method is restored as soon as the import ends.
A context created by another thread during the import is deferred the same way (and
still correct).  docs/decisions.md "CA certificates of aiohttp's default contexts".
"""

from __future__ import annotations

import contextlib
import importlib
import ssl
import threading
from collections.abc import Iterator
from types import ModuleType
from typing import Any

_LOAD_LOCK = threading.Lock()
_PATCH_LOCK = threading.RLock()
_ORIGINAL = ssl.SSLContext.set_default_verify_paths
_OWN_METHOD = "set_default_verify_paths" in vars(ssl.SSLContext)


class DeferredCAContext(ssl.SSLContext):
    """An ``SSLContext`` whose ``set_default_verify_paths`` waits for its first use."""

    ca_pending = False  # an instance sets it while its default CA certificates wait

    def load_deferred_ca(self) -> None:
        """Load the default CA certificates now if they are still waiting."""
        if self.ca_pending:
            with _LOAD_LOCK:
                if self.ca_pending:  # not loaded by another thread meanwhile
                    _ORIGINAL(self)
                    self.ca_pending = False

    def wrap_socket(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.load_deferred_ca()
        return super().wrap_socket(*args, **kwargs)

    def wrap_bio(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.load_deferred_ca()
        return super().wrap_bio(*args, **kwargs)

    def get_ca_certs(self, binary_form: bool = False) -> Any:
        self.load_deferred_ca()
        return super().get_ca_certs(binary_form)

    def cert_store_stats(self) -> Any:
        self.load_deferred_ca()
        return super().cert_store_stats()

    def set_default_verify_paths(self) -> None:
        if self.ca_pending:
            self.load_deferred_ca()
        else:
            _ORIGINAL(self)


def import_deferring_ca(name: str) -> ModuleType:
    """``importlib.import_module(name)``, with the default CA certificates of the SSL
    contexts built during the import loaded at their first use.  An already imported
    module is returned as it is."""
    with deferring_ca():
        return importlib.import_module(name)


@contextlib.contextmanager
def deferring_ca() -> Iterator[None]:
    """While the block runs, ``SSLContext.set_default_verify_paths`` only records the
    contexts that call it; when it ends, they load their CA certificates at first use
    (``DeferredCAContext``).  Nested or concurrent blocks wait for each other; one nested
    in the same thread (or a method patched by someone else) changes nothing."""
    with _PATCH_LOCK:
        if ssl.SSLContext.set_default_verify_paths is not _ORIGINAL:  # nested, or others
            yield
            return
        pending: list[ssl.SSLContext] = []

        def record(ctx: ssl.SSLContext) -> None:
            if type(ctx) is ssl.SSLContext:
                pending.append(ctx)
            else:  # a subclass of someone's: no deferring, load as asked
                _ORIGINAL(ctx)

        ssl.SSLContext.set_default_verify_paths = record  # type: ignore[method-assign]
        try:
            yield
        finally:
            if _OWN_METHOD:
                ssl.SSLContext.set_default_verify_paths = _ORIGINAL  # type: ignore[method-assign]
            else:  # inherited from the C base class: inherit it again
                del ssl.SSLContext.set_default_verify_paths
            for ctx in pending:
                ctx.__class__ = DeferredCAContext
                ctx.ca_pending = True  # type: ignore[attr-defined]


__all__ = ["DeferredCAContext", "deferring_ca", "import_deferring_ca"]
