"""The task's output files (library.md 9.4)."""

from __future__ import annotations

import os
from typing import Any


class BaseOutput:
    """An output file ``(path, type, label)`` of the task (label ``None`` means 0)."""

    def __init__(self, path_type_label: tuple[str, str, Any]) -> None:
        self.path, self.type, label = path_type_label
        self.label = 0 if label is None else int(label)

    def size(self) -> int:
        return os.path.getsize(self.path)

    def close(self) -> None:
        pass


class Output(BaseOutput):
    """An output written through ``open(path)`` (default ``disco.fileutils.DiscoOutput``)."""

    def __init__(self, path_type_label: tuple[str, str, Any], open: Any = None) -> None:
        super().__init__(path_type_label)
        if open is None:
            from disco.fileutils import DiscoOutput

            open = DiscoOutput
        self.file = open(self.path)

    def close(self) -> None:
        self.file.close()
