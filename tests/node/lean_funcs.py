"""Job functions of tests/node/test_lean_fork_base.py, in a module that imports nothing
but ``sys`` (a test module imports ``pytest``, which would put its own imports into the
job's warm process)."""

from __future__ import annotations

import sys
from typing import Any

#: Modules a job's warm process (and so a task, at its start) does not import: each
#: module mapped there costs every fork and exit; ``random`` reseeds itself in every
#: forked child (docs/decisions.md, "A lean fork base").
LEAN = (
    "random",
    "hashlib",
    "_hashlib",
    "hmac",
    "tempfile",
    "shutil",
    "zipfile",
    "bz2",
    "lzma",
    "subprocess",
)


def loaded_map(entry: Any, params: Any) -> Any:
    """The modules of ``LEAN`` this task has (inherited from its warm process, or
    imported on its path up to here)."""
    yield entry, [name for name in LEAN if name in sys.modules]


def lazy_user_map(entry: Any, params: Any) -> Any:
    """Job code that uses the modules the fork base leaves out, and the framework's
    helpers that import them when called."""
    import hashlib
    import os
    import random
    import subprocess
    import tempfile

    from disco import util
    from disco.compat import md5, persistent_hash
    from disco.jobzip import DiscoZipFile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "f")
        with open(path, "w") as f:
            f.write("x\n")
        util.unix_sort(path)  # subprocess, in disco.util
        listed = sorted(os.listdir(tmp))
    zipped = DiscoZipFile()
    zipped.writestr("a", b"b")
    yield (
        entry,
        [
            random.random(),
            md5(b"x").hexdigest() == hashlib.md5(b"x").hexdigest(),
            util.hexhash(b"x") == hashlib.md5(b"x").hexdigest()[:2],
            persistent_hash("k") == int(hashlib.md5(b"k").hexdigest(), 16),
            subprocess.run(["true"], check=False).returncode,
            listed,
            len(zipped.dumps()) > 0,
            sorted(util.shuffled([3, 1, 2])),
            list(util.dsorted([3, 1, 2], buffer_size=2, tempdir=".")),
        ],
    )
