"""The DDFS examples (library.md 20) run as they stand on the embedded default master;
their output is checked against plain Python."""

from __future__ import annotations

import os
import random
from collections import Counter

import pytest

from tests.e2e.test_examples import EXAMPLES, TEXT, run_example

pytestmark = pytest.mark.timeout(180)

DATA = os.path.join(EXAMPLES, "data")


def top_words(counts: Counter[bytes], n: int) -> list[tuple[str, int]]:
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return [(w.decode(), c) for w, c in top]


def printed_counts(out: str) -> list[tuple[str, int]]:
    lines = out.splitlines()
    rows = [line.split() for line in lines[lines.index("word                 count") + 1 :]]
    return [(w, int(c)) for w, c in rows]


def chunked_blobs(out: str) -> int:
    """``chunked <url> into <n> blobs of tag <tag>`` -> n."""
    return int(out.splitlines()[0].split()[3])


def test_ddfs_wordcount_over_a_chunked_tag(tmp_path) -> None:
    words = [("w%d" % n).encode() for n in range(300)]
    rng = random.Random(3)
    lines = [b" ".join(rng.choice(words) for _ in range(12)) for _ in range(20000)]
    text = tmp_path / "big.txt"
    text.write_bytes(b"\n".join(lines) + b"\n")  # ~1.2 MiB: two 1 MiB hunks, two blobs
    out = run_example("ddfs_wordcount.py", str(text), "--chunk-size", "1", "--top", "300")
    assert chunked_blobs(out) == 2
    assert out.splitlines()[1].startswith("results saved in tag://disco:results:")
    want = Counter(w for line in lines for w in line.split())
    assert printed_counts(out) == top_words(want, 300)


def test_ddfs_wordcount_of_the_bundled_text() -> None:
    out = run_example("ddfs_wordcount.py", "--top", "15")
    assert chunked_blobs(out) == 1
    with open(TEXT, "rb") as f:
        want = Counter(f.read().split())
    assert printed_counts(out) == top_words(want, 15)


def test_chunk_job_chunks_every_input_into_the_tag() -> None:
    out = run_example("chunk_job.py").splitlines()
    names = sorted(os.listdir(DATA))
    lines = 0
    for name in names:
        with open(os.path.join(DATA, name), "rb") as f:
            lines += len(f.read().splitlines())
    assert out[: len(names)] == ["file://%s: 1 blobs" % os.path.join(DATA, name) for name in names]
    assert out[-1] == "lines in tag://data:chunks: %d" % lines


def test_profile_job_prints_the_tasks_statistics() -> None:
    import re

    out = run_example("profile_job.py", "--lines", "40")  # map and reduce tasks merged
    assert "function calls" in out and "Ordered by: cumulative time" in out
    assert re.search(r"worker\.py:\d+\(map\)", out)  # the classic worker's map task
    assert re.search(r"worker\.py:\d+\(reduce\)", out)
    assert "count_words.py" in out  # the job's own functions, shipped with it


def test_xml_reader_counts_the_words_of_the_pages() -> None:
    import xml.etree.ElementTree as ET

    out = run_example("xml_reader.py", "--top", "1000").splitlines()
    texts = [
        e.text or ""
        for e in ET.parse(os.path.join(DATA, "pages.xml")).iter()
        if e.tag.endswith("}text")
    ]
    assert out[0] == "%d pages in tag://data:pages" % len(texts) == "4 pages in tag://data:pages"
    words = Counter()
    for text in texts:
        for sep in ".;,":
            text = text.replace(sep, " ")
        words.update(text.lower().split())
    rows = [line.split() for line in out[1:]]
    assert [(w, int(c)) for w, c in rows] == sorted(words.items(), key=lambda kv: (-kv[1], kv[0]))
