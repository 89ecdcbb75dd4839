"""Job functions for ``test_retries.py``, in a module of their own: a task that runs them
imports only this (not the test module and pytest), so a new attempt starts as fast as a
user's would and the restart gaps measured there are the system's."""

from __future__ import annotations

from typing import Any


def slow_map(line: str, params: Any) -> Any:
    """Leaves ``<input>-<pid>`` in ``params['piddir']`` (so the test can kill it), holding
    the time this attempt's code started, then works ``params['seconds']``."""
    import os
    import time

    path = os.path.join(params["piddir"], "%s-%d" % (line, os.getpid()))
    with open(path + ".tmp", "w") as f:
        f.write(repr(time.time()))
    os.rename(path + ".tmp", path)  # complete when visible
    time.sleep(params["seconds"])
    yield line, 1
