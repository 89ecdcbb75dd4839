"""Jobs with a sum-like combiner on a real master (issue 13): the map loop adds in place
for ``sum_combiner`` and a user's combiner with the same code, and the job's results,
partition by partition, are those of a combiner that the loop calls per record."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from disco.compat import persistent_hash
from disco.core import result_iterator
from disco.job import Job
from disco.worker.classic.func import sum_combiner

pytestmark = pytest.mark.timeout(180)

LINES = ["the quick brown fox", "jumps over the lazy dog", "", "the end é漢字"] * 25


def words(line: bytes, params: Any) -> Any:
    for word in line.split():
        yield word, 1


def mixed_keys(line: bytes, params: Any) -> Any:
    """Words, their lengths (int), and keys of other types now and then: ``1.0`` and
    ``True`` equal the int key ``1`` (one dict key) but have partitions of their own."""
    yield 1, 3
    for word in line.split():
        yield word, 1
        yield len(word), 2
    if line.startswith(b"the end"):
        yield 1.0, 5
        yield True, 7
        yield ("t", 1), 1


def users_sum(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    if done:
        return buf.items()
    buf[key] = buf.get(key, 0) + value


def called_sum(key: Any, value: Any, buf: dict, done: bool, params: Any) -> Any:
    """The same sums through a call: not recognised, called per record."""
    return users_sum(key, value, buf, done, params)


def keep_label(iter: Any, params: Any) -> Any:
    """Each record as it comes, tagged with this reduce's partition."""
    label = this_partition()  # noqa: F821 - injected into job functions (library.md 10.4)
    for key, value in iter:
        yield (label, key), value


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    urls = []
    for i in range(3):
        path = tmp_path / ("part-%d.txt" % i)
        path.write_text("\n".join(LINES[i::3]) + "\n", encoding="utf-8")
        urls.append(path.as_uri())
    return urls


@pytest.mark.parametrize("combiner", [sum_combiner, users_sum])
def test_canonical_word_count_with_a_sum_like_combiner(
    master: Any, inputs: list[str], combiner: Any
) -> None:
    from disco.util import kvgroup

    def reduce(iter: Any, params: Any) -> Any:
        for word, counts in kvgroup(sorted(iter)):
            yield word, sum(counts)

    job = Job(master=master.url).run(
        input=inputs, map=words, combiner=combiner, reduce=reduce, partitions=2
    )
    got = dict(result_iterator(job.wait()))
    expected = Counter(w.encode("utf-8") for line in LINES for w in line.split())
    assert got == dict(expected)


@pytest.mark.parametrize("partitions", [1, 2, 3])
def test_keys_of_every_type_land_where_the_called_combiner_puts_them(
    master: Any, inputs: list[str], partitions: int
) -> None:
    """Every (partition, key, total) of a job with the recognised combiner equals the
    one with the combiner called per record, and each key is in partition
    ``persistent_hash(key) % partitions`` (the numbers of 0.5)."""
    results = []
    for combiner in (users_sum, called_sum):
        job = Job(master=master.url).run(
            input=inputs,
            map=mixed_keys,
            combiner=combiner,
            reduce=keep_label,
            partitions=partitions,
        )
        records = [(label, type(k), k, v) for (label, k), v in result_iterator(job.wait())]
        results.append(sorted(records, key=repr))
    assert results[0] == results[1]
    for label, _kind, key, _total in results[0]:
        assert label == persistent_hash(key) % partitions
    assert sum(v for *_, v in results[0]) == sum(
        sum(v for _k, v in mixed_keys(line.encode("utf-8"), None)) for line in LINES
    )


def triples(line: bytes, params: Any) -> Any:
    for word in line.split():
        yield word, 1, 2


def test_a_map_yielding_triples_fails_as_before(master: Any, inputs: list[str]) -> None:
    """The in-place adding unpacks ``(key, value)`` as the loop always did: a 3-tuple
    fails the task with Python's own message, and the job dies."""
    from disco.error import JobError

    job = Job(master=master.url).run(
        input=inputs[:1], map=triples, combiner=users_sum, partitions=2
    )
    with pytest.raises(JobError) as info:
        job.wait()
    assert "ValueError: too many values to unpack (expected 2)" in str(info.value)
