"""Per-job event logs (master-api.md 4): append-only files plus an in-memory tail.

Owns ``<master_root>/<hh>/<job>/events``, one line per event in the 4.1 format
``["YYYY/MM/DD HH:MM:SS","host","msg"]\\n``.  Every append is written and flushed at
once (no 2 s buffering: readers never lag, 4.2), and the newest events stay in memory
for ``jobevents`` (2.3).  ``jobevents`` reading and filtering live here too.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections import deque
from json.encoder import encode_basestring_ascii
from typing import IO

from disco.safenames import check_job_name, no_symlink_below

logger = logging.getLogger(__name__)

TAIL = 200  # 4.2: the newest 100-200 events are kept in memory
MAX_MESSAGE = 8192  # 4.1: messages are truncated to about 8 KiB
MAX_NUM = 1000  # 2.3: jobevents num is capped
_FILTER_DROP = re.compile(r"[^a-z0-9!@:-_]")  # 2.3: keep letters, digits, ! @ and ':'..'_'


def hash_dir(name: str) -> str:
    """``hh(name)``: the first byte of md5(name) as two hex digits (9.1)."""
    return hashlib.md5(name.encode("utf-8")).hexdigest()[:2]


def job_dir(master_root: str, job: str) -> str:
    """``<master_root>/<hh>/<job>``; ``UnsafeName`` for a name that is no job name or a
    directory that is (or goes through) a symlink out of the master root."""
    check_job_name(job)
    path = os.path.join(master_root, hash_dir(job), job)
    return no_symlink_below(master_root, path, "job name")


_last_stamp: tuple[int, str] = (-1, "")


def timestamp(now: float) -> str:
    """Master local time, ``YYYY/MM/DD HH:MM:SS`` (3.1, 4.1); the text of the last
    second is kept (a busy job logs hundreds of events a second)."""
    global _last_stamp
    second = int(now // 1)
    if _last_stamp[0] != second:
        _last_stamp = (second, time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(second)))
    return _last_stamp[1]


# what json.dumps(text) returns for a str (default ensure_ascii): its C encoder
_string = encode_basestring_ascii


def format_line(now: float, host: str, message: str) -> str:
    """``json.dumps([stamp, host, message], separators=(",", ":")) + "\\n"``, three string
    encodings without the encoder's setup (an event is logged several times per task)."""
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "..."
    return "[%s,%s,%s]\n" % (_string(timestamp(now)), _string(host), _string(message))


class EventLog:
    """The event log of one job."""

    def __init__(self, master_root: str, job: str) -> None:
        self.job = job
        self.path = os.path.join(job_dir(master_root, job), "events")
        self.tail: deque[str] = deque(maxlen=TAIL)
        self._file: IO[str] | None = None
        self._closed = False

    def append(self, host: str, message: str, now: float | None = None) -> None:
        line = format_line(time.time() if now is None else now, host, message)
        self.tail.append(line)
        if self._closed:
            return  # 4.2: after the log is closed, events are kept in memory only
        try:
            if self._file is None:
                os.makedirs(os.path.dirname(self.path), exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            self._file.write(line)
            self._file.flush()
        except OSError as exc:
            logger.error("cannot write events of %s: %s", self.job, exc)

    def close(self) -> None:
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None


def _file_lines(path: str) -> list[str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return [line if line.endswith("\n") else line + "\n" for line in f if line.strip()]
    except OSError:
        return []


def clean_filter(text: str) -> str:
    """2.3: lower-cased, characters outside the conservative set removed."""
    return _FILTER_DROP.sub("", text.lower())


def jobevents(path: str, tail: list[str] | None, num: int, filter_text: str = "") -> str:
    """The ``jobevents`` body: a JSON array of event lines, newest first (2.3, 13.4)."""
    num = max(0, min(num, MAX_NUM))
    needle = clean_filter(filter_text)
    if needle:
        matches = [line for line in _file_lines(path) if needle in line.lower()]
        lines = list(reversed(matches[:num]))
    else:
        source = tail if tail is not None else _file_lines(path)
        lines = list(reversed(source[-num:])) if num else []
    return "[" + ",".join(lines) + "]"
