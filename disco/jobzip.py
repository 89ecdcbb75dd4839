"""``DiscoZipFile``: the in-memory zip of a job home (``disco.fileutils.DiscoZipFile``).

Apart from ``disco.fileutils`` so that ``zipfile`` (and ``shutil``, ``bz2``, ``lzma``
with it) is imported only by the processes that build a job pack, not by every
warm process that forks tasks (docs/decisions.md, "A lean fork base").
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable
from typing import Any
from zipfile import ZIP_DEFLATED, ZipFile

from disco.fileutils import files


class DiscoZipFile(ZipFile):
    """An in-memory zip (the job home) with helpers to add paths, modules and sources."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()
        super().__init__(self.buffer, "w", ZIP_DEFLATED)

    def writepath(self, pathname: str, exclude: Iterable[str] = ()) -> None:
        """Add a file, or a directory tree, under its relative name."""
        excluded = tuple(exclude)
        for file in files(pathname):
            if os.path.splitext(file)[1] not in excluded:
                self.write(file, file)

    def writemodule(self, module: Any, arcname: str | None = None) -> None:
        """Add a module's source file (``module`` object or name)."""
        if isinstance(module, str):
            module = sys.modules[module]
        path = module.__file__
        self.write(path, arcname or os.path.basename(path))

    def writesource(self, obj: Any) -> None:
        """Add the source file defining ``obj`` under its file name."""
        import inspect

        self.writepath(os.path.relpath(inspect.getsourcefile(obj) or ""))

    def dump(self, handle: Any) -> None:
        handle.write(self.dumps())

    def dumps(self) -> bytes:
        if self.fp is not None:
            self.close()
        return self.buffer.getvalue()
