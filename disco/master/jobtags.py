"""The master's own DDFS duties for jobs (ddfs.md 1.12, 7.2, 7.3; master-api.md 10.6).

Writing ``disco:results:<job>`` when a ``save_results`` job ends, and deleting
``disco:job:oob:<job>`` when a job is purged or its data expires.  Both go straight to
the master's tag store with the ``INTERNAL`` token (no HTTP, no user token can stop
them).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from disco.ddfs.errors import DDFSError
from disco.ddfs.tagdoc import INTERNAL
from disco.master.coordinator import results_tag
from disco.oob import oob_tag

if TYPE_CHECKING:
    from disco.ddfs.master import DDFSMaster


class JobTags:
    """``save_results`` and ``delete_oob`` on one master's DDFS."""

    def __init__(self, ddfs: DDFSMaster) -> None:
        self.ddfs = ddfs

    async def save_results(self, job: str, results: Sequence[Sequence[str]]) -> str:
        """Replace the urls of ``disco:results:<job>`` (tokens ``null``); its tag URL."""
        tag = results_tag(job)
        await self.ddfs.tags.put_urls(tag, [list(replicas) for replicas in results], INTERNAL)
        return "tag://%s" % tag

    async def missing(self, names: Sequence[str]) -> list[str]:
        """The tags of ``names`` that do not exist (job inputs are checked at submit)."""
        absent = []
        for name in names:
            try:
                await self.ddfs.tags.get(name, INTERNAL)
            except DDFSError as exc:
                if exc.status == 404:  # other errors (DDFS busy): the job is not refused
                    absent.append(name)
        return absent

    async def delete_oob(self, job: str) -> bool:
        """Delete ``disco:job:oob:<job>``; ``False`` when the job has no OOB tag."""
        tag = oob_tag(job)
        try:
            await self.ddfs.tags.get(tag, INTERNAL)
        except DDFSError as exc:
            if exc.status == 404:
                return False  # nothing to delete: no tombstone for a tag never written
            raise
        await self.ddfs.tags.delete(tag, INTERNAL)
        return True
