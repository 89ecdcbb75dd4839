"""The map task's record routing (``disco.worker.classic.maploop``, issue 13): every fast
path writes exactly what the map loop of library.md 17.3 writes, record by record.

The oracle below is that loop written plainly: per record, the partition function
(the md5 ``default_partition`` of 0.5, ``persistent_hash(key) % n``), then the combiner
with that partition's buffer, or the output; at the end the combiner's ``done`` call
per buffer.  ``run_map`` must give the same writes, in the same order, to the same
partitions, with the same key and value types, and fail with the same exception after
the same writes, whatever the keys (str, bytes, int, other types, unhashable), values,
combiner (sum-like or not) and number of partitions.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disco.compat import persistent_hash
from disco.worker.classic import maploop, sumlike
from disco.worker.classic.func import default_partition, sum_combiner
from tests.fuzzing import FUZZ


class Writes:
    """The outputs of a task: ``writer(part)`` for ``run_map``, recording every write."""

    def __init__(self) -> None:
        self.log: list[tuple[Any, ...]] = []

    def writer(self, part: Any) -> Any:
        log = self.log

        class Out:
            def add(self, key: Any, value: Any) -> None:
                log.append((part, type(key), key, type(value), value))

        return Out()


def oracle(entries: list[list[Any]], partition: Any, partitions: Any, combiner: Any) -> Writes:
    """The map loop of library.md 17.3, one step per record, nothing remembered."""
    out = Writes()
    writers: dict[Any, Any] = {}
    buffers: dict[Any, dict[Any, Any]] = {}

    def write(part: Any, key: Any, value: Any) -> None:
        if part not in writers:
            writers[part] = out.writer(part)
        writers[part].add(key, value)

    try:
        for pairs in entries:
            for key, value in pairs:
                if not partitions:
                    part = None
                elif partition is default_partition:
                    part = persistent_hash(key) % partitions  # 0.5's md5, every record
                else:
                    part = int(partition(key, partitions, "P"))
                if combiner:
                    emitted = combiner(key, value, buffers.setdefault(part, {}), False, "P")
                    for k, v in emitted or ():
                        write(part, k, v)
                else:
                    write(part, key, value)
        for part, buffer in buffers.items():
            for k, v in combiner(None, None, buffer, True, "P") or ():
                write(part, k, v)
    except Exception as e:
        out.log.append(("raised", type(e), str(e)))
    return out


def routed(entries: list[list[Any]], partition: Any, partitions: Any, combiner: Any) -> Writes:
    out = Writes()
    try:
        maploop.run_map(
            (iter(pairs) for pairs in entries), out.writer, partition, partitions, combiner, "P"
        )
    except Exception as e:
        out.log.append(("raised", type(e), str(e)))
    return out


# -- combiners ---------------------------------------------------------------------------
def user_sum(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    if done:
        return buf.items()
    buf[key] = buf.get(key, 0) + value


def user_sum_documented(k: Any, v: Any, buffer: dict, finished: bool, p: Any) -> Any:
    """Other argument names and a docstring: the same code."""
    if not finished:
        buffer[k] = buffer.get(k, 0) + v
        return None
    return buffer.items()


def not_sum_called(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    """Sums too, but through a call: not recognised, so the general loop."""
    return user_sum(key, value, buf, done, params)


def value_first(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    """``value + total``: not the same for every type (str, lists), not recognised."""
    if done:
        return buf.items()
    buf[key] = value + buf.get(key, 0)


def emits_every_third(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    """Keeps the largest value, writes and clears the buffer every third key."""
    if done:
        return sorted(buf.items(), key=repr)
    buf[key] = max(buf.get(key, value), value)
    if len(buf) >= 3:
        items = list(buf.items())
        buf.clear()
        return items
    return None


def keeps_first(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    if done:
        return buf.items()
    buf.setdefault(key, value)


class CallableSum:
    def __call__(self, key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
        return user_sum(key, value, buf, done, params)


SUM_LIKE = [sum_combiner, user_sum, user_sum_documented]
NOT_SUM_LIKE = [
    not_sum_called,
    value_first,
    emits_every_third,
    keeps_first,
    CallableSum(),
    functools.partial(user_sum),
    lambda key, value, buf, done, params: user_sum(key, value, buf, done, params),
]


def test_sum_like_combiners_are_recognised() -> None:
    for combiner in SUM_LIKE:
        assert sumlike.is_sum_like(combiner), combiner
    for combiner in NOT_SUM_LIKE + [None, len, print]:
        assert not sumlike.is_sum_like(combiner), combiner


def test_a_sum_like_spelling_that_reads_a_global_or_a_closure_is_not_recognised() -> None:
    zero = 0

    def closure(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
        if done:
            return buf.items()
        buf[key] = buf.get(key, zero) + value

    def defaults(key: Any, value: Any, buf: dict, done: bool, params: Any = 0) -> Any:
        if done:
            return buf.items()
        buf[key] = buf.get(key, params) + value

    assert not sumlike.is_sum_like(closure)
    assert not sumlike.is_sum_like(defaults)
    for body in sumlike.SPELLINGS:  # each spelling, compiled in a user's module
        namespace: dict[str, Any] = {}
        source = "def c(key, value, buf, done, params):\n" + "".join(
            "    " + line + "\n" for line in body.splitlines()
        )
        exec(compile(source, "user_module.py", "exec"), namespace)
        assert sumlike.is_sum_like(namespace["c"]), body
        tweaked = source.replace("get(key, 0)", "get(key, 1)")
        exec(compile(tweaked, "user_module.py", "exec"), namespace)
        assert not sumlike.is_sum_like(namespace["c"]), tweaked


# -- property: run_map == the oracle -----------------------------------------------------
class Unhashable(list):
    """An unhashable key."""


fast_keys = st.one_of(
    st.text(max_size=4),
    st.binary(max_size=4),
    st.integers(-3, 3),
    st.integers(min_value=-(2**70), max_value=2**70),
)
other_keys = st.one_of(
    st.booleans(),
    st.sampled_from([1.0, 0.0, -0.0, 2.5]),
    st.none(),
    st.tuples(st.integers(0, 2), st.text(max_size=1)),
    st.builds(Unhashable, st.lists(st.integers(0, 2), max_size=2)),
)
values = st.one_of(st.integers(-5, 5), st.integers(0, 1), st.sampled_from([0.5, 2.0]))
odd_values = st.one_of(values, st.sampled_from(["x", b"y", None]))
#: Equal keys of different types (one dict key, not always one partition).
equal_twins = st.tuples(st.sampled_from([1, 1.0, True, 0, 0.0, False]), values)
records = st.one_of(
    st.tuples(fast_keys, values),
    equal_twins,
    st.tuples(other_keys, values),
    st.tuples(fast_keys, odd_values),
)
bad_records = st.one_of(records, st.sampled_from([(1, 2, 3), 7, ("k",), "ab"]))


def entries_of(record: st.SearchStrategy[Any]) -> st.SearchStrategy[list[list[Any]]]:
    return st.lists(st.lists(record, max_size=8), max_size=8)


def custom_partition(key: Any, nr: int, params: Any) -> Any:
    assert params == "P"
    return str(len(repr(key)) % nr)


PARTITIONS = st.sampled_from([None, 0, 1, 2, 3, 7])


@FUZZ
@given(
    entries=entries_of(records),
    partitions=PARTITIONS,
    combiner=st.sampled_from(SUM_LIKE + NOT_SUM_LIKE + [None]),
)
def test_default_partition_routing_equals_the_oracle(
    entries: list[list[Any]], partitions: Any, combiner: Any
) -> None:
    expected = oracle(entries, default_partition, partitions, combiner).log
    assert routed(entries, default_partition, partitions, combiner).log == expected


@FUZZ
@given(
    entries=entries_of(fast_keys.map(lambda k: (k, 1))),
    partitions=st.sampled_from([None, 1, 2, 5]),
    combiner=st.sampled_from(SUM_LIKE),
)
def test_sum_like_fast_path_equals_the_oracle_on_words(
    entries: list[list[Any]], partitions: Any, combiner: Any
) -> None:
    """The canonical word count's case: str/bytes/int keys, value 1."""
    expected = oracle(entries, default_partition, partitions, combiner).log
    assert routed(entries, default_partition, partitions, combiner).log == expected
    assert ("raised",) not in [w[:1] for w in expected]


@FUZZ
@given(
    entries=entries_of(bad_records),
    partitions=PARTITIONS,
    combiner=st.sampled_from([user_sum, not_sum_called, None]),
)
def test_records_that_are_not_pairs_fail_as_in_the_oracle(
    entries: list[list[Any]], partitions: Any, combiner: Any
) -> None:
    """A map yielding a 3-tuple, a number or a string: the same error after the same
    writes, with or without a fast path."""
    expected = oracle(entries, default_partition, partitions, combiner).log
    assert routed(entries, default_partition, partitions, combiner).log == expected


@FUZZ
@given(
    entries=entries_of(records),
    partitions=st.sampled_from([1, 2, 3]),
    combiner=st.sampled_from([user_sum, emits_every_third, None]),
)
def test_custom_partition_routing_equals_the_oracle(
    entries: list[list[Any]], partitions: Any, combiner: Any
) -> None:
    """A partition function of the job's own: called per record, never the fast path."""
    expected = oracle(entries, custom_partition, partitions, combiner).log
    assert routed(entries, custom_partition, partitions, combiner).log == expected


def test_equal_keys_of_other_types_keep_their_partitions() -> None:
    """1, 1.0 and True are one dict key; with several partitions each goes where its
    own hash sends it, so the fast dict hands over to the general loop at 1.0."""
    entries = [[(1, 1), ("a", 1)], [(1.0, 2), (True, 4), (1, 8), ("a", 16)]]
    parts = {persistent_hash(k) % 7 for k in (1, 1.0, True)}
    assert len(parts) > 1  # the case is real: they are spread
    for combiner in (user_sum, sum_combiner):
        expected = oracle(entries, default_partition, 7, combiner).log
        assert routed(entries, default_partition, 7, combiner).log == expected
        expected = oracle(entries, default_partition, 1, combiner).log  # one buffer: merged
        assert routed(entries, default_partition, 1, combiner).log == expected
        assert expected == [(0, int, 1, int, 15), (0, str, "a", int, 17)]


def test_a_value_that_does_not_add_fails_in_the_users_combiner() -> None:
    """The error comes from the user's own combiner (its traceback names it)."""
    entries = [[("a", 1), ("a", "x")]]
    with pytest.raises(TypeError) as info:
        maploop.run_map(
            iter([iter(p) for p in entries]), Writes().writer, default_partition, 2, user_sum, None
        )
    assert info.traceback[-1].name == "user_sum"
