"""The figures of a benchmark script: printed as JSON, and written to ``--json FILE``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def emit(figures: dict[str, Any], path: str | None) -> None:
    """Print ``figures`` (indented JSON); write the same text to ``path`` if given."""
    text = json.dumps(figures, indent=1)
    print(text)
    if path:
        Path(path).write_text(text + "\n")
