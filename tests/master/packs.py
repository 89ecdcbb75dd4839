"""Hand-built job packs for the master tests (master-api.md 6.1), with a POSIX sh worker.

The worker speaks the protocol of 8.10 with ``printf``/``read``: WORKER, TASK, INPUT,
then per ``MODE`` (a jobenv): ``ok`` writes one local output per label in ``LABELS``
(default 1) and sends DONE; ``error``/``fatal`` send ERROR/FATAL; ``sleep`` blocks;
``flaky`` fails the first attempt of each task (a marker file in the job home) then
succeeds; ``more`` polls INPUT until the input set is ``done`` (concurrent stages).
"""

from __future__ import annotations

import io
import json
import struct
import zipfile

WORKER_SH = r"""#!/bin/sh
send() { printf '%s %d %s\n' "$1" "${#2}" "$2"; }
send WORKER "{\"version\":\"1.1\",\"pid\":$$}"; read -r reply
send TASK '""'; read -r task
taskid=$(printf '%s' "$task" | sed 's/.*"taskid":\([0-9]*\).*/\1/')
stage=$(printf '%s' "$task" | sed 's/.*"stage":"\([^"]*\)".*/\1/')
send INPUT '""'; read -r input
case "${MODE:-ok}" in
  error) send ERROR '"failing on purpose"'; exec sleep 60 ;;
  fatal) send FATAL '"fatal on purpose"'; exec sleep 60 ;;
  sleep) exec sleep 60 ;;
  crash) exit 3 ;;
  flaky)
    if [ ! -e "flaky-$stage-$taskid" ]; then
      : > "flaky-$stage-$taskid"; send ERROR '"first attempt fails"'; exec sleep 60
    fi ;;
  more)
    while :; do
      case "$input" in *'"done"'*) break ;; esac
      send INPUT '""'; read -r input
    done ;;
esac
send MSG "\"inputs of $stage:$taskid\""; read -r reply
n=${LABELS:-1}; i=0
while [ "$i" -lt "$n" ]; do
  f="out-$stage-$taskid-$i"
  printf '%s\n' "$input" > "$f"
  size=$(wc -c < "$f" | tr -d ' ')
  send OUTPUT "[$i,\"$f\",$size]"; read -r reply
  i=$((i + 1))
done
send DONE '""'
exec sleep 60
"""


def make_pack(
    jobdict: dict,
    jobenvs: dict | None = None,
    files: dict[str, str] | None = None,
    jobdata: bytes = b"",
    version: int = 2,
) -> bytes:
    """The 6.1 layout: header, jobdict, jobenvs, jobhome zip, jobdata."""
    home = io.BytesIO()
    with zipfile.ZipFile(home, "w") as z:
        for name, text in (files if files is not None else {"worker.sh": WORKER_SH}).items():
            z.writestr(name, text)
    dict_bytes = json.dumps(jobdict).encode()
    env_bytes = json.dumps(jobenvs or {}).encode()
    d_off = 128
    e_off = d_off + len(dict_bytes)
    h_off = e_off + len(env_bytes)
    j_off = h_off + len(home.getvalue())
    header = struct.pack("!IIIII", 0xD5C00000 | version, d_off, e_off, h_off, j_off)
    return header.ljust(128, b"\0") + dict_bytes + env_bytes + home.getvalue() + jobdata


def v2_dict(pipeline: list, inputs: list, **extra: object) -> dict:
    jobdict = {
        "prefix": "Test",
        "owner": "tester@host",
        "worker": "worker.sh",
        "scheduler": {},
        "pipeline": pipeline,
        "inputs": inputs,
    }
    jobdict.update(extra)
    return jobdict


def v1_dict(inputs: list, **extra: object) -> dict:
    jobdict = {
        "prefix": "Classic",
        "owner": "tester@host",
        "worker": "worker.sh",
        "scheduler": {},
        "input": inputs,
        "nr_reduces": 1,
        "map?": True,
        "reduce?": True,
    }
    jobdict.update(extra)
    return jobdict


def with_compression_method(pack: bytes, method: int) -> bytes:
    """``pack`` with every member of its jobhome zip marked as compressed with
    ``method`` (e.g. 99, which no Python can read), offsets unchanged."""
    _magic, d_off, e_off, h_off, j_off = struct.unpack_from("!IIIII", pack)
    home = bytearray(pack[h_off:j_off])
    for signature, field in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        start = 0
        while (start := home.find(signature, start)) != -1:
            struct.pack_into("<H", home, start + field, method)
            start += 4
    return pack[:h_off] + bytes(home) + pack[j_off:]
