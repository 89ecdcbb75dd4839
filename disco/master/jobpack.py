"""Job pack decoding and validation (master-api.md 6), pure: bytes in, ``JobSpec`` out.

Owns the binary header (6.1), the jobdict keys of both versions (6.2-6.4), the v1 to
pipeline translation table (6.4), jobenvs (6.5) and the error reasons of 2.2.  Errors
are ``JobPackError`` whose ``reason`` is the text after ``Job failed to start: ``; the
wording follows the Erlang-printed terms of 0.5 (quoted strings, bare atoms, 13.2).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from disco.error import DiscoError
from disco.lazydataclass import lazy_dataclass
from disco.safenames import UnsafeName, check_job_prefix, check_stage_name

MAGIC = 0xD5C0
HEADER = struct.Struct("!IIIII")
HEADER_SIZE = 128
GROUPINGS = ("split", "group_label", "group_node", "group_node_label", "group_all")
MAX_CORES_DEFAULT = 2**31


class JobPackError(DiscoError, ValueError):
    """The job pack was refused; ``reason`` is the 2.2 text."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


def _quoted(text: str) -> JobPackError:
    """A reason printed like an Erlang string: in double quotes (2.2)."""
    return JobPackError(json.dumps(text))


@dataclass(frozen=True)
class StageSpec:
    name: str
    grouping: str
    concurrent: bool = False


@dataclass(frozen=True)
class DataInput:
    """A job input with replica URLs (6.3 rows; v1 non-dir elements)."""

    label: int
    size: int
    urls: tuple[str, ...]


@lazy_dataclass(frozen=True)
class DirInput:
    """A ``dir://`` input (v1, and v2 since 11.3 splits it by label): its index is
    downloaded at job start (6.4)."""

    url: str


JobInput = DataInput | DirInput


@dataclass(frozen=True)
class JobSpec:
    """A validated job pack."""

    version: int
    prefix: str
    worker: str
    owner: str
    pipeline: tuple[StageSpec, ...]
    inputs: tuple[JobInput, ...]
    jobenvs: dict[str, str] = field(hash=False, compare=False)
    jobdict: dict[str, Any] = field(hash=False, compare=False)
    max_cores: int = MAX_CORES_DEFAULT
    save_results: bool = False
    save_info: str = "ddfs"


def decode_header(data: bytes) -> tuple[int, tuple[int, int, int, int]]:
    """``(version, (dict, envs, home, data offsets))``; ``"invalid header"`` otherwise (6.1)."""
    if len(data) < HEADER_SIZE:
        raise _quoted("invalid header")
    magic_version, d_off, e_off, h_off, j_off = HEADER.unpack_from(data)
    if (
        magic_version >> 16 != MAGIC
        or d_off != HEADER_SIZE
        or not e_off > d_off
        or not h_off >= e_off
        or not j_off >= h_off
        or len(data) < j_off
    ):
        raise _quoted("invalid header")
    return magic_version & 0xFFFF, (d_off, e_off, h_off, j_off)


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
        # lone surrogates ("\\ud800") decode, but no file, log or database can hold them
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise JobPackError('"invalid payload: %s:%s"' % (what, type(exc).__name__))
    if not isinstance(value, dict):
        raise JobPackError('"invalid payload: %s:not an object"' % what)
    return value


def _payload_error(detail: str) -> JobPackError:
    return JobPackError(json.dumps("invalid payload: " + detail))


def _required(jobdict: dict[str, Any], key: str) -> Any:
    if key not in jobdict:
        raise _quoted("jobpack missing key '%s'" % key)
    return jobdict[key]


def _string(jobdict: dict[str, Any], key: str) -> str:
    value = _required(jobdict, key)
    if not isinstance(value, str):
        raise _payload_error("%s:string expected" % key)
    return value


def _shown(value: Any) -> str:
    """``value`` as JSON for a reason text, cut short."""
    try:
        text = json.dumps(value)
    except (RecursionError, ValueError):
        text = "..."
    return text if len(text) <= 200 else text[:200] + "..."


def _safe_stage(name: str) -> bool:
    """Stage names become file names of the job home (``<stage>-<task>-<ts>.results``)."""
    try:
        check_stage_name(name)
    except UnsafeName:
        return False
    return True


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def decode(data: bytes) -> JobSpec:
    """Validate a whole job pack (6.1-6.5)."""
    version, (d_off, e_off, h_off, j_off) = decode_header(data)
    jobdict = _json_object(data[d_off:e_off], "jobdict")
    jobenvs = _json_object(data[e_off:h_off], "jobenvs") if h_off > e_off else {}
    if not all(isinstance(v, str) for v in jobenvs.values()):
        raise _payload_error("jobenvs:string values expected")  # 6.5
    prefix = _string(jobdict, "prefix")
    try:
        check_job_prefix(prefix)  # 5: no "/" or "."; DDFS-safe and short (13.5)
    except UnsafeName:
        raise _quoted("invalid prefix") from None
    worker = _string(jobdict, "worker")
    owner = _string(jobdict, "owner")
    scheduler = _required(jobdict, "scheduler")
    if not isinstance(scheduler, dict):
        raise _payload_error("scheduler:object expected")
    max_cores = scheduler.get("max_cores", MAX_CORES_DEFAULT)
    if not _is_int(max_cores) or max_cores < 1:
        raise _payload_error("max_cores:positive integer expected")
    save_results = jobdict.get("save_results", False)
    if not isinstance(save_results, bool):
        raise JobPackError("invalid_job_save_results")
    save_info = jobdict.get("save_info", "ddfs")
    if (
        not isinstance(save_info, str)
        or len(save_info) < 4
        or save_info[:4] not in ("ddfs", "hdfs")
    ):
        raise JobPackError("invalid_job_save_info")
    if version == 1:
        pipeline, inputs = _v1(jobdict)
    elif version == 2:
        pipeline, inputs = _v2(jobdict)
    else:
        raise _quoted("unsupported version '%d'" % version)
    check_jobhome(data[h_off:j_off], worker if pipeline else None)
    return JobSpec(
        version=version,
        prefix=prefix,
        worker=worker,
        owner=owner,
        pipeline=pipeline,
        inputs=inputs,
        jobenvs=dict(jobenvs),
        jobdict=jobdict,
        max_cores=max_cores,
        save_results=save_results,
        save_info=save_info,
    )


# -- version 2 (6.3) ---------------------------------------------------------------------
def _v2(jobdict: dict[str, Any]) -> tuple[tuple[StageSpec, ...], tuple[JobInput, ...]]:
    rows = _required(jobdict, "pipeline")
    if not isinstance(rows, list):
        raise _quoted("Invalid job pipeline: list expected")
    pipeline: list[StageSpec] = []
    for row in rows:
        if (
            not isinstance(row, list)
            or len(row) != 3
            or not isinstance(row[0], str)
            or not isinstance(row[1], str)
            or not isinstance(row[2], bool)
        ):
            raise _quoted("Invalid job pipeline: %s" % _shown(row))
        if row[1] not in GROUPINGS:
            raise _quoted("invalid grouping '<<\"%s\">>'" % row[1][:100])
        if not row[0] or row[0] == "input" or not _safe_stage(row[0]):
            raise _quoted("Invalid job pipeline: invalid stage name %s" % _shown(row[0]))
        pipeline.append(StageSpec(row[0], row[1], row[2]))
    names = [s.name for s in pipeline]
    if len(set(names)) != len(names):
        raise JobPackError("repeated_pipeline_stages")
    raw_inputs = _required(jobdict, "inputs")
    if not isinstance(raw_inputs, list):
        raise JobPackError("invalid_job_inputs")
    inputs: list[JobInput] = []
    for row in raw_inputs:
        if not isinstance(row, list) or len(row) != 3:
            raise JobPackError("invalid_job_inputs")
        label, size, urls = row
        if isinstance(urls, str):
            urls = [urls]  # 13.12: a bare URL string is accepted too
        if (
            not _is_int(label)
            or not _is_int(size)
            or not isinstance(urls, list)
            or not all(isinstance(u, str) for u in urls)
        ):
            raise JobPackError("invalid_job_inputs")
        if urls and urls[0].startswith("dir://"):
            # An index file (e.g. another job's results): its labels are read at job start
            # and grouped like stage outputs (library.md 11.3), not as one label-0 input.
            inputs.append(DirInput(urls[0]))
        else:
            inputs.append(DataInput(label, size, tuple(urls)))
    return tuple(pipeline), tuple(inputs)


# -- version 1 (6.4) ---------------------------------------------------------------------
def v1_pipeline(map_: bool, reduce: bool, reduce_shuffle: bool, nr_reduces: Any) -> list[str]:
    """The ``stage:grouping`` rows of the 6.4 table (first match wins)."""
    one = _is_int(nr_reduces) and nr_reduces == 1
    if not map_ and not reduce:
        return []
    if not map_:
        if one:
            return ["reduce:group_all"]
        rows = ["reduce:group_label"]
        return rows + ["reduce_shuffle:group_node"] if reduce_shuffle else rows
    rows = ["map:split", "map_shuffle:group_node"]
    if not reduce:
        return rows
    if one:
        return rows + ["reduce:group_all"]
    rows.append("reduce:group_label")
    return rows + ["reduce_shuffle:group_node"] if reduce_shuffle else rows


def _flag(jobdict: dict[str, Any], key: str) -> bool:
    value = jobdict.get(key, False)
    if not isinstance(value, bool):
        raise _payload_error("%s:boolean expected" % key)
    return value


def _v1(jobdict: dict[str, Any]) -> tuple[tuple[StageSpec, ...], tuple[JobInput, ...]]:
    raw_inputs = _required(jobdict, "input")
    nr_reduces = _required(jobdict, "nr_reduces")
    if not isinstance(raw_inputs, list):
        raise _payload_error("input:list expected")
    rows = v1_pipeline(
        _flag(jobdict, "map?"),
        _flag(jobdict, "reduce?"),
        _flag(jobdict, "reduce_shuffle?"),
        nr_reduces,
    )
    pipeline = tuple(StageSpec(*row.split(":"), concurrent=False) for row in rows)
    inputs: list[JobInput] = []
    for item in raw_inputs:
        urls = [item] if isinstance(item, str) else item
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise _payload_error("input:URL or list of URLs expected")
        if urls and urls[0].startswith("dir://"):
            inputs.append(DirInput(urls[0]))  # extra replicas are ignored (6.4)
        else:
            inputs.append(DataInput(0, 0, tuple(urls)))
    return pipeline, tuple(inputs)


def check_has_inputs(spec: JobSpec) -> None:
    """Refuse a job with no usable input (``"the job has no inputs"``).

    [Differs from 0.5] which ran it as a job of empty stages that succeeds at once: a
    job over nothing is a mistake (an empty input list, a typo), docs/decisions.md.
    """
    for inp in spec.inputs:
        if isinstance(inp, DirInput) or inp.urls:
            return
    raise _quoted("the job has no inputs: give at least one input URL")


def own_tag_names(spec: JobSpec) -> list[str]:
    """Names of the ``tag://`` inputs that name this master's DDFS (no host of their own)."""
    from disco.util import urlsplit

    names: list[str] = []
    for inp in spec.inputs:
        for url in inp.urls if isinstance(inp, DataInput) else ():
            if url.startswith("tag://"):
                _scheme, (host, _port), name = urlsplit(url)
                if not host and name and name not in names:
                    names.append(name)
    return names


def check_jobhome(zipbytes: bytes, worker: str | None) -> None:
    """Refuse a job home the nodes could not unpack (a corrupt zip, an unsupported
    compression method, an unsafe member) or that lacks the worker: the same failure
    on every node, so refused at submit instead of failing every attempt (issue 8.3)."""
    from disco.node.jobhome import check_jobhome as node_check

    try:
        node_check(zipbytes, worker)
    except ValueError as exc:
        raise _quoted("invalid jobhome: %s" % exc) from None
