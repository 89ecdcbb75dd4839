"""The map loop's partition numbers (issue 13): the fast default partition gives exactly
the numbers of ``persistent_hash(key) % nr_partitions``, never hashes with one partition,
and a real map task files every record under that number."""

from __future__ import annotations

import random
from typing import Any

import pytest

from disco.compat import persistent_hash
from disco.job import Job
from disco.worker.classic import partitioner as pmod
from disco.worker.classic.func import default_partition, sum_combiner
from tests.worker.peer import Node

pytestmark = pytest.mark.timeout(60)

COUNTS = [1, 2, 3, 4, 7, 16, 100, 1 << 20, (1 << 70) + 3]


def old_default_partition(key: Any, nr_partitions: int) -> int:
    """The function as it was: md5 of the key's text read as ``int(hexdigest, 16)``."""
    return persistent_hash(key) % nr_partitions


def sample_keys(n: int = 3000) -> list[Any]:
    rng = random.Random(13)
    alphabet = "abcxyz019 éß漢字😀\t"
    keys: list[Any] = ["", "a", "key", "é", "😀", b"", b"\xff\x00", 0, -1, 2**64, -(2**200)]
    for _ in range(n):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        keys += [text, text.encode("utf-8"), rng.randint(-(10**30), 10**30)]
    # not str/bytes/int: the slow path, still the same numbers
    keys += [True, False, None, 1.5, 1.0, (1, "a"), ["x"], bytearray(b"ab"), frozenset()]
    return keys


@pytest.mark.parametrize("nr", COUNTS)
def test_fast_default_partition_equals_the_old_function(nr: int) -> None:
    keys = sample_keys()
    old = [old_default_partition(k, nr) for k in keys]
    assert [pmod.fast_default_partition(k, nr) for k in keys] == old
    assert [default_partition(k, nr, None) for k in keys] == old


@pytest.mark.parametrize("nr", COUNTS)
def test_map_loop_partitioner_equals_the_old_function(nr: int) -> None:
    keys = sample_keys()
    old = [old_default_partition(k, nr) for k in keys]
    part = pmod.partitioner(default_partition, nr, None)
    assert [part(k) for k in keys] == old
    assert [part(k) for k in keys] == old  # the second time from the cache
    once = pmod.partitioner(default_partition, nr, None, remember=False)
    assert [once(k) for k in keys] == old  # no cache: what the sum-like loop uses per key
    # equal keys of other types (1 == 1.0 == True) do not share a cached number
    part = pmod.partitioner(default_partition, nr, None)
    assert [part(k) for k in (1, 1.0, True, "1", b"1")] == [
        old_default_partition(k, nr) for k in (1, 1.0, True, "1", b"1")
    ]


def test_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pmod, "CACHE_LIMIT", 10)
    part = pmod.partitioner(default_partition, 5, None)
    keys = ["k%d" % i for i in range(100)]
    assert [part(k) for k in keys] == [old_default_partition(k, 5) for k in keys]
    caches = [c.cell_contents for c in part.__closure__ if isinstance(c.cell_contents, dict)]
    assert [len(c) for c in caches] == [10]


class Unhashable:
    """A key whose text cannot be made: hashing it raises."""

    def __repr__(self) -> str:
        raise AssertionError("hashed")


def test_one_partition_never_hashes() -> None:
    part = pmod.partitioner(default_partition, 1, None)
    assert part(Unhashable()) == 0 and part("a") == 0
    with pytest.raises(AssertionError):
        pmod.partitioner(default_partition, 2, None)(Unhashable())


def test_no_partitions_and_custom_partition_functions() -> None:
    assert pmod.partitioner(default_partition, 0, None)("a") is None
    assert pmod.partitioner(default_partition, None, None)("a") is None
    calls = []

    def custom(key: Any, nr: int, params: Any) -> Any:
        calls.append((key, nr, params))
        return "3"

    part = pmod.partitioner(custom, 1, "P")
    assert part("a") == 3 and part("a") == 3  # called every time, with int() applied
    assert calls == [("a", 1, "P"), ("a", 1, "P")]


def many_keys_map(entry: Any, params: Any) -> Any:
    for i in range(400):
        yield "w%d" % (i % 97), 1
        yield b"b%d" % (i % 53), 1
        yield i % 61 - 30, 1
        yield (i % 5, "t"), 1
        yield [1, 1.0, True][i % 3], 1  # equal keys of three types, three partitions


@pytest.mark.parametrize("combine", [False, True])
@pytest.mark.parametrize("nr", [1, 4, 7])
def test_real_map_task_files_records_under_the_old_numbers(
    tmp_path: Any, nr: int, combine: bool
) -> None:
    extra = {"combiner": sum_combiner} if combine else {}
    node = Node(
        str(tmp_path), Job(master="http://127.0.0.1:1"), map=many_keys_map, partitions=nr, **extra
    )
    run = node.run(inputs=[(0, ["raw://x"])])
    assert run.status == "DONE", run.payload
    totals: dict[Any, int] = {}
    for label in {label for label, _, _ in run.outputs}:
        records = list(run.records(label))
        for k, v in records:
            assert old_default_partition(k, nr) == label, (k, label)
            key = (type(k), k)
            totals[key] = totals.get(key, 0) + v
    assert sum(totals.values()) == 2000
    if not combine:  # (the combiner's dict buffer holds 1, 1.0 and True as one key)
        assert totals[(float, 1.0)] == totals[(bool, True)] == 133
    else:  # each key once per task
        assert sum(len(list(run.records(lbl))) for lbl, _, _ in run.outputs) == len(totals)


def own_sum_combiner(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    """sum_combiner's contract written by a user: called per record, not inlined."""
    if done:
        return buf.items()
    buf[key] = buf.get(key, 0) + value


def called_sum_combiner(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    """Sums through a call: not recognised as sum-like, so called per record."""
    return own_sum_combiner(key, value, buf, done, params)


@pytest.mark.parametrize("nr", [None, 1, 3])
def test_inlined_sum_combiner_writes_what_the_called_one_writes(tmp_path: Any, nr: Any) -> None:
    """The map loop adds into one dict itself for ``sum_combiner`` and a user's combiner
    with the same code (keys of other types hand over to the general loop): the same
    records in the same files as a combiner the loop calls per record."""
    written = []
    for i, combiner in enumerate([sum_combiner, own_sum_combiner, called_sum_combiner]):
        node = Node(
            str(tmp_path / str(i)),
            Job(master="http://127.0.0.1:1"),
            map=many_keys_map,
            partitions=nr,
            combiner=combiner,
        )
        run = node.run(inputs=[(0, ["raw://x"])])
        assert run.status == "DONE", run.payload
        labels = sorted({label for label, _, _ in run.outputs}, key=repr)
        written.append({label: list(run.records(label)) for label in labels})
    assert written[0] == written[1] == written[2]
    assert sum(v for records in written[0].values() for _k, v in records) == 2000


def unhashable_keys_map(entry: Any, params: Any) -> Any:
    for i in range(5):
        yield Unhashable(), i


def test_real_map_task_with_one_partition_never_hashes(tmp_path: Any) -> None:
    """One partition: every record is written to partition 0 without hashing its key
    (a key whose text cannot be made would fail the task if it were hashed)."""
    node = Node(
        str(tmp_path), Job(master="http://127.0.0.1:1"), map=unhashable_keys_map, partitions=1
    )
    run = node.run(inputs=[(0, ["raw://x"])])
    assert run.status == "DONE", run.payload
    assert {label for label, _, _ in run.outputs} == {0}
    assert [v for _k, v in run.records(0)] == [0, 1, 2, 3, 4]
