"""``sort=True``'s sort (``disco.util.disk_sort`` / ``disco.recordsort``), issue 13: in
memory when the records fit the sort buffer, sorted runs spilled to disk and merged when
they do not, the same order either way (bytes keys in byte order, str keys by their UTF-8
bytes, equal keys in input order)."""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from disco import recordsort, util
from disco.error import DataError


class Messages:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, kind: str, message: str) -> None:
        self.sent.append(message)


def records(n: int, seed: int, kind: type = bytes, keys: int = 0) -> list[tuple[object, object]]:
    """``n`` records; with ``keys``, only that many distinct keys (many ties)."""
    rng = random.Random(seed)
    out: list[tuple[object, object]] = []
    for i in range(n):
        if kind is bytes:
            key: object = rng.randbytes(rng.randrange(0, 12)).replace(b"\x00", b"a")
            key = key.replace(b"\xff", b"b")  # type: ignore[attr-defined]
            if keys:
                key = b"k%d" % rng.randrange(keys)
        else:
            key = "".join(
                chr(rng.choice([rng.randrange(1, 128), rng.randrange(128, 0x10FFFF)]))
                for _ in range(rng.randrange(0, 6))
            )
            key = key.encode("utf-8", "surrogatepass").decode("utf-8", "surrogatepass")
            if keys:
                key = "k%dé" % rng.randrange(keys)
        out.append((key, (i, b"v" * rng.randrange(0, 50))))
    return out


def expected(recs: list[tuple[object, object]]) -> list[tuple[object, object]]:
    """Python's stable sort by key: bytes order, str code-point order, ties in input order."""
    return sorted(recs, key=lambda kv: kv[0])


@pytest.mark.parametrize("kind", [bytes, str])
def test_in_memory_and_spilled_sorts_give_the_same_order(tmp_path, kind) -> None:
    recs = records(40000, seed=3, kind=kind)
    memory = list(util.disk_sort(None, iter(recs), str(tmp_path / "a"), sort_buffer_size="1G"))
    w = Messages()
    spilled = list(util.disk_sort(w, iter(recs), str(tmp_path / "b"), sort_buffer_size="100K"))
    assert memory == spilled == expected(recs)
    assert all(type(k) is kind for k, _ in spilled)
    assert w.sent[0] == "Downloading %s" % (tmp_path / "b") and w.sent[-1] == "Finished sorting"
    assert os.listdir(tmp_path) == []  # the run files are gone


def test_spilling_really_writes_runs_and_removes_them(tmp_path) -> None:
    recs = records(30000, seed=5)
    sorter = recordsort.RecordSort(str(tmp_path / "s"), 64 * 1024)
    sorter.add_all(iter(recs))
    assert len(sorter.runs) > 10 and all(os.path.exists(p) for p in sorter.runs)
    it = sorter.sorted()
    assert next(it) == expected(recs)[0]
    it.close()  # closed early: the runs are removed too
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", [bytes, str])
def test_equal_keys_keep_their_input_order(tmp_path, kind) -> None:
    recs = records(50000, seed=11, kind=kind, keys=7)
    for size in ("1G", "50K"):
        got = list(util.disk_sort(None, iter(recs), str(tmp_path / size), sort_buffer_size=size))
        assert got == expected(recs)
        for key in {k for k, _ in recs}:
            numbers = [v[0] for k, v in got if k == key]  # type: ignore[index]
            assert numbers == sorted(numbers)


def test_str_keys_sort_by_their_utf8_bytes_like_gnu_sort(tmp_path) -> None:
    """The order LC_ALL=C sort gives the keys' UTF-8 bytes (surrogates, astral planes)."""
    keys = ["b", "a", "é", "Z", "ab", "\U0001f600", "\uffff", "", "a b", "\ud800", "\ue000", "~"]
    recs = [(k, i) for i, k in enumerate(keys)] * 3
    got = [k for k, _ in util.disk_sort(None, recs, str(tmp_path / "s"), sort_buffer_size="1M")]
    lines = b"\n".join(k.encode("utf-8", "surrogatepass") for k in keys) + b"\n"
    gnu = subprocess.run(
        ["sort"], input=lines, capture_output=True, env=dict(os.environ, LC_ALL="C"), check=True
    ).stdout.splitlines()
    assert [k.encode("utf-8", "surrogatepass") for k in got[::3]] == gnu


def test_bytes_keys_sort_in_unsigned_byte_order_prefixes_first(tmp_path) -> None:
    recs = [(b"\xfe", 1), (b"a", 2), (b"", 3), (b"ab", 4), (b"A", 5), (b"\x01", 6), (b"a\x80", 7)]
    got = list(util.disk_sort(None, recs, str(tmp_path / "s")))
    assert [k for k, _ in got] == [b"", b"\x01", b"A", b"a", b"ab", b"a\x80", b"\xfe"]


def test_bad_keys_fail_in_a_batch_and_after_a_spill(tmp_path) -> None:
    good = [(b"k%d" % i, i) for i in range(30000)]
    for bad, match in [
        ((b"x\x00y", 1), "0xFF or 0x00"),
        ((b"x\xffy", 1), "0xFF or 0x00"),
        (("str", 1), "all bytes or all str"),
        ((5, 1), "all bytes or all str"),
    ]:
        with pytest.raises(ValueError, match=match):
            list(util.disk_sort(None, good + [bad], str(tmp_path / "s"), sort_buffer_size="64K"))
        assert os.listdir(tmp_path) == []
    with pytest.raises(ValueError, match="0xFF or 0x00"):
        list(util.disk_sort(None, [("a", 1)] * 20000 + [("b\x00", 2)], str(tmp_path / "t")))


def test_records_that_are_lists_or_subclass_keys_are_taken(tmp_path) -> None:
    class Key(bytes):
        pass

    recs = [[b"b", 1], (Key(b"a"), 2), [b"c", 3]]
    got = list(util.disk_sort(None, recs, str(tmp_path / "s")))
    assert got == [(b"a", 2), (b"b", 1), (b"c", 3)] and type(got[0][0]) is bytes
    with pytest.raises(ValueError):
        list(util.disk_sort(None, [(b"a", 1), (b"b", 2, 3)], str(tmp_path / "s")))


def test_sort_buffer_size_is_read_like_gnu_sort_s() -> None:
    assert recordsort.buffer_bytes("1M") == 1 << 20
    assert recordsort.buffer_bytes("512k") == 512 << 10
    assert recordsort.buffer_bytes(100) == 100 << 10  # a bare number is KiB
    assert recordsort.buffer_bytes("100b") == 100
    assert recordsort.buffer_bytes("2G") == 2 << 30
    assert recordsort.buffer_bytes("10%") == recordsort.physical_memory() // 10
    for bogus in ("bogus", "10x", "-1M", "200%"):
        with pytest.raises(DataError, match="Invalid sort_buffer_size"):
            recordsort.buffer_bytes(bogus)


def test_disk_sort_is_lazy_and_a_for_loop_gets_the_list_iterator(tmp_path) -> None:
    """issue 13: disk_sort reads nothing before the first record is asked for (as the
    generator it was); ``iter()`` of it is the sorted list's own iterator (no Python
    frame per record); ``next()`` works too."""
    w = Messages()
    recs = records(2000, seed=9)
    sorted_records = util.disk_sort(w, iter(recs), str(tmp_path / "s"), sort_buffer_size="1G")
    assert w.sent == []
    it = iter(sorted_records)
    assert type(it) is type(iter([]))
    assert w.sent[0].startswith("Downloading")
    first = next(sorted_records)
    assert [first, *it] == expected(recs)


def test_closing_a_spilled_sort_early_removes_its_runs(tmp_path) -> None:
    recs = records(20000, seed=4)
    sorted_records = util.disk_sort(Messages(), iter(recs), str(tmp_path / "s"), "100K")
    head = [next(sorted_records) for _ in range(10)]
    assert head == expected(recs)[:10]
    assert any(name.startswith("s.run") for name in os.listdir(tmp_path))
    sorted_records.close()
    assert not any(name.startswith("s.run") for name in os.listdir(tmp_path))
    assert list(sorted_records) == []


def test_a_bad_key_fails_at_the_first_record_asked_for(tmp_path) -> None:
    sorted_records = util.disk_sort(Messages(), iter([(1, "x")]), str(tmp_path / "s"))
    with pytest.raises(ValueError, match="Keys must be bytes or str"):
        next(sorted_records)
    assert list(sorted_records) == []


@pytest.mark.parametrize("collector_on", [True, False])
def test_the_collector_is_paused_while_records_are_read_and_restored(
    tmp_path, collector_on
) -> None:
    """``RecordSort.add_all`` reads with the cyclic collector off (each young collection
    walked the lists being filled, to free nothing), and leaves it as it found it, also
    when the reading fails."""
    import gc

    seen: list[bool] = []

    def reading(recs: list[tuple[object, object]], fail: bool = False):
        for i, record in enumerate(recs):
            if i % 500 == 0:
                seen.append(gc.isenabled())
            yield record
        if fail:
            raise RuntimeError("the input failed")

    was_on = gc.isenabled()
    try:
        gc.enable() if collector_on else gc.disable()
        recs = records(3000, 5)
        got = list(util.disk_sort(None, reading(recs), str(tmp_path / "sort")))
        assert got == expected(recs)
        assert seen and not any(seen)
        assert gc.isenabled() is collector_on
        seen.clear()
        with pytest.raises(RuntimeError):
            list(util.disk_sort(None, reading(recs, fail=True), str(tmp_path / "sort")))
        assert seen and not any(seen)
        assert gc.isenabled() is collector_on
    finally:
        gc.enable() if was_on else gc.disable()


KEPT_RECORDS_SCRIPT = """
import gc, sys
from disco import util
frozen = sys.argv[1] == "frozen"
if frozen:
    gc.collect()
    gc.freeze()  # as the zygote does: a task's process starts with objects frozen
before = gc.get_freeze_count()
# values that are lists: the records stay tracked (a collection untracks tuples of bytes)
reading = ((b"%08d" % (i * 7919 % 30000), [i]) for i in range(30000))
got = list(util.disk_sort(None, reading, sys.argv[2]))
young = {id(o) for g in (0, 1) for o in gc.get_objects(generation=g)}
old = {id(o) for o in gc.get_objects(generation=2)}
assert [k for k, _ in got] == sorted(b"%08d" % i for i in range(30000))
print(sum(id(r) in young for r in got), sum(id(r) in old for r in got),
      gc.get_freeze_count() - before >= 30000, gc.get_freeze_count() >= before, gc.isenabled())
"""


@pytest.mark.parametrize("frozen", [True, False])
def test_the_records_read_are_left_out_of_young_collections(tmp_path, frozen) -> None:
    """The records a sort reads are kept to the end of the label: after the reading they
    are out of the young generations, where the first young collection would walk them
    all (about 40 ms for a task's 500 k records).  In a process that froze objects (a
    task forked from the zygote) they are frozen with those, which stay frozen;
    otherwise they are aged into the oldest generation."""
    import sys

    out = subprocess.run(
        [
            sys.executable,
            "-c",
            KEPT_RECORDS_SCRIPT,
            "frozen" if frozen else "not",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )
    if frozen:
        assert out.stdout.split() == ["0", "0", "True", "True", "True"], out
    else:
        assert out.stdout.split() == ["0", "30000", "False", "True", "True"], out
