"""``lazy_dataclass``: ``@dataclass`` done at the class's first use instead of at import.

``@dataclass`` writes the source of each generated method (``__init__``, ``__repr__``,
``__eq__``, ``__hash__``, and for frozen classes ``__setattr__``/``__delattr__``) and
compiles it when the module is imported: about 0.4 ms of CPU per class on a small
machine, 35 ms for the 86 classes a master imports, most of them events and
instructions a given run never builds (issue 13, tiny job: 23 of the coordinator's 31
were never instantiated by a job).  ``@lazy_dataclass(...)`` takes the same options and
leaves the class as written, with small stand-ins for the methods ``@dataclass`` would
add; the first use of any of them (creating an instance, comparing, hashing, ``repr``,
``dataclasses.fields``/``is_dataclass``/``asdict``, ``__match_args__``) runs the real
``dataclasses.dataclass`` on the class, once, under a lock.  From then on the class is
exactly what ``@dataclass`` makes (same methods, same fields, same identity): nothing a
user can see differs except when the work is done.

Not deferred (``@dataclass`` at once): ``slots=True`` (that makes a new class) and
``weakref_slot``.  A class attribute that is a field's default reads as the ``Field``
(or default) only after the first use; the classes here are used through instances.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform

T = TypeVar("T")

_LOCK = threading.RLock()
_STAND_IN = "__lazy_dataclass__"  # marks the stand-ins (and holds the options)


class _Deferred:
    """A class attribute (``__dataclass_fields__``, ``__match_args__``) that makes the
    class a dataclass when read, then answers with the real value."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        cls = owner if owner is not None else type(obj)
        target = _pending_owner(cls)
        if target is None:  # a subclass that shadows nothing: the normal lookup failed
            raise AttributeError(self.name)
        materialize(target)
        return getattr(obj if obj is not None else cls, self.name)


def _pending_owner(cls: type) -> type | None:
    for klass in cls.__mro__:
        if _STAND_IN in klass.__dict__:
            return klass
    return None


def _stand_in(cls: type, name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        materialize(cls)
        real = getattr(cls, name)
        if real is None:  # __hash__ of a mutable dataclass
            raise TypeError("unhashable type: %r" % type(self).__name__)
        return real(self, *args, **kwargs)

    method.__name__ = method.__qualname__ = name
    return method


def _methods(options: dict[str, Any]) -> list[str]:
    """The methods ``@dataclass`` may add with ``options`` (when the class has none)."""
    names = []
    if options.get("init", True):
        names.append("__init__")
    if options.get("repr", True):
        names.append("__repr__")
    if options.get("eq", True):
        names += ["__eq__", "__hash__"]
    if options.get("order", False):
        names += ["__lt__", "__le__", "__gt__", "__ge__"]
    if options.get("frozen", False):
        names += ["__setattr__", "__delattr__"]
    return names


@dataclass_transform(field_specifiers=(dataclasses.field, dataclasses.Field))
def lazy_dataclass(cls: type[T] | None = None, /, **options: Any) -> Any:
    """``@dataclass(**options)``, applied at the class's first use (see the module)."""

    def wrap(klass: type[T]) -> type[T]:
        if options.get("slots") or options.get("weakref_slot"):
            return dataclasses.dataclass(klass, **options)
        added: list[str] = []
        for name in _methods(options):
            if name == "__hash__" and "__hash__" in klass.__dict__:
                continue  # None (set with __eq__) or the class's own: @dataclass decides
            if name not in klass.__dict__:
                setattr(klass, name, _stand_in(klass, name))
                added.append(name)
        for name in ("__dataclass_fields__", "__match_args__"):
            if name not in klass.__dict__:
                setattr(klass, name, _Deferred(name))
                added.append(name)
        setattr(klass, _STAND_IN, (options, added))
        return klass

    return wrap if cls is None else wrap(cls)


def materialize(cls: type) -> type:
    """Make ``cls`` (a ``lazy_dataclass``) the dataclass it stands for, if not done yet."""
    with _LOCK:
        pending = cls.__dict__.get(_STAND_IN)
        if pending is None:
            return cls
        options, added = pending
        for klass in cls.__mro__[1:]:  # bases first: their fields are inherited
            if _STAND_IN in klass.__dict__:
                materialize(klass)
        delattr(cls, _STAND_IN)
        for name in added:  # @dataclass sees the class exactly as it was written
            delattr(cls, name)
        made = dataclasses.dataclass(cls, **options)
        assert made is cls
        return cls


__all__ = ["lazy_dataclass", "materialize"]
