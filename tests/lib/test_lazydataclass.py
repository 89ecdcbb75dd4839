"""disco.lazydataclass: ``@lazy_dataclass`` makes the same class as ``@dataclass``, at its
first use instead of at import (issue 13, tiny job: the coordinator's vocabulary and
rarely used DDFS records cost about 0.4 ms of CPU each at every master start)."""

from __future__ import annotations

import copy
import dataclasses
import os
import pickle
import textwrap
import threading
from dataclasses import dataclass, field

import pytest

from disco.lazydataclass import lazy_dataclass, materialize
from tests.conftest import environ_without_disco, run_python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _make(deco):
    @deco(frozen=True)
    class Event:
        """An event."""

        job: str
        labels: dict = field(hash=False, default_factory=dict)
        now: float = 0.0

    @deco(frozen=True)
    class Later(Event):
        extra: int = 1

    @deco()
    class Mutable:
        x: int
        items: list = field(default_factory=list)

    @deco(order=True)
    class Ordered:
        x: int

    @deco(frozen=True)
    class Plain:
        x: int

    return Event, Later, Mutable, Ordered, Plain


def _behaviour(Event, Later, Mutable, Ordered, Plain) -> list:
    """Everything a user can see of the classes, the first use of each class differing."""
    out: list = [dataclasses.is_dataclass(Plain), Plain.__match_args__]
    out += [[f.name for f in dataclasses.fields(Later)], Later.__doc__]
    e = Event("j", {"k": 1}, 2.0)
    out += [repr(e), e == Event("j", {}, 2.0), e == Event("j", {"k": 1}, 2.0)]
    out += [hash(e) == hash(Event("j", {}, 2.0)), e.__doc__, dataclasses.asdict(e)]
    with pytest.raises(dataclasses.FrozenInstanceError) as frozen:
        e.job = "x"  # type: ignore[misc]
    out.append(str(frozen.value))
    later = Later("j")
    out += [repr(later), repr(dataclasses.replace(later, extra=5)), copy.copy(later) == later]
    m = Mutable(1)
    m.x = 2
    out += [repr(m), Mutable.__hash__, m == Mutable(2)]
    with pytest.raises(TypeError):
        hash(m)
    out += [Ordered(1) < Ordered(2), sorted([Ordered(3), Ordered(1)])[0].x]
    match e:
        case Event(job, labels, now):
            out.append(("matched", job, labels, now))
    out.append(type(e).__name__)
    return [str(x).replace("lazy", "") for x in out]


def test_a_lazy_dataclass_behaves_as_the_dataclass() -> None:
    assert _behaviour(*_make(lazy_dataclass)) == _behaviour(*_make(dataclass))


def test_no_dataclass_code_is_made_before_the_first_use() -> None:
    Event, Later, Mutable, Ordered, Plain = _make(lazy_dataclass)
    assert "__lazy_dataclass__" in vars(Plain)
    assert "__dataclass_params__" not in vars(Plain)
    assert Plain.__init__.__name__ == "__init__"
    p = Plain(3)  # the first use
    assert "__lazy_dataclass__" not in vars(Plain)
    assert vars(Plain)["__dataclass_params__"].frozen
    assert p == Plain(3) and repr(p).endswith("Plain(x=3)")
    # a subclass used first makes its lazy base a dataclass too
    assert "__lazy_dataclass__" in vars(Event)
    assert Later("j").extra == 1
    assert "__lazy_dataclass__" not in vars(Event)
    assert materialize(Plain) is Plain


def test_instances_unpickled_before_any_other_use_compare_as_dataclasses() -> None:
    """Unpickling makes an instance without ``__init__`` (``object.__new__`` and its
    ``__dict__``): its comparison, hash and ``repr`` still make the class first."""
    for first in ("eq", "hash", "repr"):
        Event, *_ = _make(lazy_dataclass)
        e = object.__new__(Event)
        e.__dict__.update(job="a", labels={}, now=1.0)
        assert "__lazy_dataclass__" in vars(Event)
        if first == "eq":
            assert e == Event("a", {}, 1.0)
        elif first == "hash":
            assert hash(e) == hash(("a", 1.0))
        else:
            assert repr(e).endswith("Event(job='a', labels={}, now=1.0)")
        assert "__lazy_dataclass__" not in vars(Event)


@lazy_dataclass(frozen=True)
class _Pickled:
    job: str
    labels: dict = field(hash=False, default_factory=dict)
    now: float = 0.0


def test_pickled_instances_round_trip() -> None:
    e = _Pickled("a", {"x": 1}, 1.0)
    assert pickle.loads(pickle.dumps(e)) == e


def test_first_use_from_many_threads_at_once() -> None:
    Event, *_ = _make(lazy_dataclass)
    made: list = []
    start = threading.Barrier(8)

    def use() -> None:
        start.wait()
        made.append(Event("j"))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(made) == 8 and all(e == Event("j") for e in made)


def test_slots_are_not_deferred() -> None:
    @lazy_dataclass(frozen=True, slots=True)
    class Slotted:
        x: int

    assert "__slots__" in vars(Slotted) and "__lazy_dataclass__" not in vars(Slotted)
    assert Slotted(1) == Slotted(1)


def test_the_master_makes_only_the_events_a_job_uses() -> None:
    """Started, with a job run: most of the coordinator's events and instructions were
    never made dataclasses; those the job used were (and behave as such)."""
    script = textwrap.dedent(
        """
        import dataclasses
        from disco.core import Job, result_iterator
        from disco.embedded import EmbeddedMaster
        from disco.master import states
        from tests.lib.pairmap import pair_map as parent_map
        with EmbeddedMaster() as m:
            job = Job(master=m.url).run(input=["raw://a", "raw://b"], map=parent_map)
            print(len(list(result_iterator(job.wait(timeout=60)))))
        lazy = [n for n, c in vars(states).items()
                if isinstance(c, type) and "__lazy_dataclass__" in vars(c)]
        made = [n for n, c in vars(states).items()
                if isinstance(c, type) and "__dataclass_params__" in vars(c)]
        print(sorted(lazy))
        print(sorted(made))
        print(dataclasses.is_dataclass(states.RetryDue), states.RetryDue("j", 1, 2.0))
        from disco.ddfs import uploadfront, uploadhead
        from disco.node import protocol
        seldom = [protocol.Error, protocol.Fatal, protocol.InputError, protocol.Ping,
                  uploadhead.Head, uploadfront.BlobPut]
        print([c.__name__ for c in seldom if "__lazy_dataclass__" not in vars(c)])
        print(protocol.Error("x") == protocol.Error("x"), repr(protocol.Ping()))
        """
    )
    out = run_python("-c", script, cwd=ROOT, env=environ_without_disco(), timeout=120)
    records, lazy, made, later, seldom_made, seldom_used = out.splitlines()
    assert seldom_made == "[]"  # not made by a tiny job (nor its start)
    assert seldom_used == "True Ping()"
    assert records == "2"
    assert "JobSubmitted" in made and "AttemptDone" in made and "StartTask" in made
    assert "RetryDue" in lazy and "NodeFull" in lazy and "JobFailure" in lazy
    assert len(eval(lazy)) > len(eval(made))
    assert later == "True RetryDue(job='j', taskid=1, now=2.0)"
