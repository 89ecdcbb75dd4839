"""What the benchmark scripts share: the master a script's job runs on, and how a script
reports its figures.  The scripts import it in ``main`` (their tasks never need it)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def use_master(url: str) -> None:
    """Point this process's Disco settings at ``url``, as a settings file would.

    The data of a node is served on ``DISCO_PORT`` (master-api.md), so ``result_iterator``
    needs the master's port, not the default 8989, to read ``disco://`` results.
    """
    from urllib.parse import urlsplit

    os.environ["DISCO_MASTER"] = url
    port = urlsplit(url).port
    if port:
        os.environ["DISCO_PORT"] = str(port)


def master_url(given: str | None) -> str:
    """The master to run on: ``given`` (``--master``, see ``use_master``), else the
    embedded default master, started in this process."""
    if given:
        use_master(given)
        return given
    from disco.embedded import default_master

    return default_master()


def emit(figures: dict[str, Any], path: str | None) -> None:
    """Print ``figures`` (indented JSON); write the same text to ``path`` if given."""
    text = json.dumps(figures, indent=1)
    print(text)
    if path:
        Path(path).write_text(text + "\n")
