"""Job packs around tiny ``/bin/sh`` workers, so client tests need no Python worker.

``OUTPUT_WORKER`` writes ``hello <stage>`` to one local output per task; ``BLOCKING_WORKER``
asks for its task and then waits for a reply that never comes (until killed).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from disco.job import JobPack

PRELUDE = r"""#!/bin/sh
send() { printf '%s %d %s\n' "$1" "${#2}" "$2"; }
recv() { IFS= read -r line || exit 99; }
send WORKER "{\"version\":\"1.1\",\"pid\":$$}"; recv
send TASK '""'; recv
stage=$(printf '%s' "$line" | sed 's/.*"stage":"\([^"]*\)".*/\1/')
"""

OUTPUT_WORKER = (
    PRELUDE
    + r"""
send MSG "\"hello from $stage\""; recv
mkdir -p out
file="out/$stage-$$"
printf 'hello %s\n' "$stage" > "$file"
size=$(wc -c < "$file" | tr -d ' ')
send OUTPUT "[0,\"$file\",$size]"; recv
send DONE '""'
"""
)

BLOCKING_WORKER = PRELUDE + "\nrecv\n"


def jobpack(
    worker: str = OUTPUT_WORKER,
    inputs: list[Any] | None = None,
    *,
    prefix: str = "ShJob",
    map: bool = False,
    owner: str = "tester@test",
) -> bytes:
    """A v1 job pack running ``worker`` (``map?`` as given, no reduce)."""
    jobdict = {
        "prefix": prefix,
        "owner": owner,
        "worker": "bin/worker.sh",
        "scheduler": {},
        "input": inputs if inputs is not None else ["raw://one"],
        "map?": map,
        "reduce?": False,
        "nr_reduces": 1,
        "save_results": False,
        "save_info": "ddfs",
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        info = zipfile.ZipInfo("bin/worker.sh")
        info.external_attr = 0o755 << 16
        z.writestr(info, worker)
    return JobPack(1, jobdict, {}, buf.getvalue(), b"").dumps()
