"""``dir://`` index URLs (library.md 13, 16.3): ``open`` only.

``open`` yields the records of every data URL in the index (shuffled), filtered by the
task's ``group_label`` when running in a task, each read with ``chain_reader``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from disco.schemes.scheme_disco import active_task
from disco.util import parse_dir, shuffled


class IndexRecords:
    """Iterates the records of the data URLs listed in one index file."""

    def __init__(self, url: str, task: Any = None) -> None:
        self.url = url
        self.task = active_task(task)
        label = getattr(self.task, "group_label", None) if self.task is not None else None
        self.urls = shuffled(parse_dir(url, label=label, task=self.task))

    def __iter__(self) -> Iterator[Any]:
        from disco.schemes import open_chain

        for url in self.urls:
            yield from open_chain(url, task=self.task)

    def __len__(self) -> int:
        return len(self.urls)

    def close(self) -> None:
        pass


def open(url: str, task: Any = None) -> IndexRecords:  # noqa: A001 - scheme API
    return IndexRecords(url, task)
