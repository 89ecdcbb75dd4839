"""``disco.util``: iteration, URL, input and sorting helpers (library.md section 7).

The URL helpers follow master-api.md 9.3; the external sort writes and reads the file
format of library.md 16.5.  OOB helpers store values in DDFS (ddfs.md 7.3).
"""

from __future__ import annotations

import functools
import heapq
import inspect
import io
import itertools
import logging
import os
import pickle
import types
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from disco import recordsort
from disco.compat import bytes_to_str, sort_cmd  # noqa: F401 - bytes_to_str: a name of before
from disco.error import DataError, DiscoError

logger = logging.getLogger(__name__)

# ``random``, ``tempfile`` (and through it ``shutil``, ``bz2``, ``lzma``), ``subprocess``,
# ``gzip`` and ``hashlib`` (OpenSSL's libcrypto) are imported by the functions that use
# them, not here: this module is in the memory every task is forked from
# (``disco.node.zygote_process``), where each module mapped costs every fork and exit
# (its mappings and pages), and ``random`` reseeds itself in every forked child
# (``os.register_at_fork``) whether the task uses it or not (docs/decisions.md, "A lean
# fork base").
try:  # the interpreter's own md5: the same digest as ``hashlib.md5``
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover - a Python built without it
    from hashlib import md5 as _md5

# -- 7.1 iteration helpers ------------------------------------------------------------------


def isiterable(obj: Any) -> bool:
    """Iterable and not a string; ``bytes`` count as scalars too (21.10)."""
    return hasattr(obj, "__iter__") and not isinstance(obj, (str, bytes, bytearray))


def iterify(obj: Any) -> Iterator[Any]:
    if isiterable(obj):
        return iter(obj)
    return iter([obj])


def listify(obj: Any) -> list[Any]:
    return list(iterify(obj))


def flatten(iterable: Any) -> Iterator[Any]:
    """Recursively yield the non-iterable leaves (strings and bytes are leaves)."""
    for item in iterify(iterable):
        if isiterable(item):
            yield from flatten(item)
        else:
            yield item


def chainify(iterable: Iterable[Iterable[Any]]) -> list[Any]:
    return list(itertools.chain(*iterable))


def kvgroup(kviter: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Iterator[Any]]]:
    """Group consecutive equal keys: yield ``(key, values)``; the input is not sorted."""
    for k, kvs in itertools.groupby(kviter, key=lambda kv: kv[0]):
        yield k, (v for _, v in kvs)


def kvify(entry: Any) -> tuple[Any, Any]:
    return entry if iskv(entry) else (entry, None)


def iskv(obj: Any) -> bool:
    return isinstance(obj, tuple) and len(obj) == 2


def key(kv: Any) -> Any:
    return kv[0]


def ilen(it: Iterable[Any]) -> int:
    return sum(1 for _ in it)


def identity(x: Any) -> Any:
    return x


def partition(iterable: Iterable[Any], fn: Callable[[Any], Any]) -> tuple[list[Any], list[Any]]:
    t: list[Any] = []
    f: list[Any] = []
    for item in iterable:
        (t if fn(item) else f).append(item)
    return t, f


def shuffled(obj: Iterable[Any]) -> list[Any]:
    import random  # lazy: see the note at the top of this module

    items = list(obj)
    random.shuffle(items)
    return items


def dsorted(iterable: Iterable[Any], buffer_size: float = 1e6, tempdir: str = ".") -> Iterator[Any]:
    """External merge sort: sorted runs of ``buffer_size`` items pickled to temp files."""
    import tempfile  # lazy: see the note at the top of this module

    iterator = iter(iterable)
    size = max(1, int(buffer_size))
    runs: list[Any] = []
    try:
        while True:
            chunk = sorted(itertools.islice(iterator, size))
            if not chunk:
                break
            run = tempfile.TemporaryFile(dir=tempdir)
            for item in chunk:
                pickle.dump(item, run, pickle.HIGHEST_PROTOCOL)
            run.seek(0)
            runs.append(run)
        yield from heapq.merge(*(_unpickle_run(r) for r in runs))
    finally:
        for run in runs:
            run.close()


def _unpickle_run(fd: Any) -> Iterator[Any]:
    while True:
        try:
            yield pickle.load(fd)
        except EOFError:
            return


def reify(dotted_name: str, globals: dict[str, Any] | None = None) -> Any:
    """``'pkg.mod.attr'`` -> the attribute; a name without dots is evaluated."""
    if "." in dotted_name:
        import importlib

        modname, attr = dotted_name.rsplit(".", 1)
        return getattr(importlib.import_module(modname), attr)
    return eval(dotted_name, globals if globals is not None else {})  # noqa: S307 - 0.5 API


def argcount(obj: Any) -> int:
    """Positional(-or-keyword) parameters, defaults included (21.9: bound ``self`` excluded).

    Kept per plain function (and its code and defaults): a job's warm process works
    them out once for all its tasks (``disco.task.preload``)."""
    plain = type(obj) is types.FunctionType
    if plain:
        known = _ARGCOUNTS.get(obj)
        if known is not None and known[0] is obj.__code__ and known[1] is obj.__defaults__:
            return known[2]
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return 0
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    count = sum(1 for p in sig.parameters.values() if p.kind in kinds)
    if plain:
        _ARGCOUNTS[obj] = (obj.__code__, obj.__defaults__, count)
    return count


_ARGCOUNTS: weakref.WeakKeyDictionary[Any, tuple[Any, Any, int]] = weakref.WeakKeyDictionary()


def globalize(obj: Any, globals: dict[str, Any]) -> None:
    """``setdefault`` every item of ``globals`` into the function's (or partial's) globals."""
    if isinstance(obj, functools.partial):
        obj = obj.func
    target = getattr(obj, "__globals__", None)
    if target is not None:
        for k, v in globals.items():
            target.setdefault(k, v)


def hexhash(b: bytes | str) -> str:
    """First two hex digits of md5 (str is UTF-8 encoded first, 21.5)."""
    if isinstance(b, str):
        b = b.encode("utf-8")
    return _md5(b).hexdigest()[:2]


# -- 7.2 URL helpers ---------------------------------------------------------------------------


def _settings() -> Any:
    from disco.settings import DiscoSettings

    return DiscoSettings()


def _default_proxy() -> str:
    try:
        return str(_settings()["DISCO_PROXY"] or "")
    except Exception:  # an unreadable settings file must not break the import
        return ""


DISCO_PROXY = _default_proxy()


def url_text(url: Any) -> Any:
    """A URL given as ``bytes`` (a record read from ``raw://`` or a file) as ``str``
    (UTF-8, undecodable bytes kept as surrogates); anything else as it is.  Every
    helper of 7.2 and 7.3 that takes a URL accepts both, as 0.5's did on Python 2."""
    if isinstance(url, (bytes, bytearray, memoryview)):
        return bytes(url).decode("utf-8", "surrogateescape")
    return url


def schemesplit(url: str | bytes) -> tuple[str, str]:
    url = url_text(url)
    if "://" in url:
        scheme, rest = url.split("://", 1)
        return scheme, rest
    return "", url


class netloc(tuple):
    """``(host, port)`` of a URL; ``str()`` is ``host[:port]``; falsy when host is empty."""

    def __new__(cls, hostport: Iterable[str] = ("", "")) -> netloc:
        return super().__new__(cls, tuple(hostport))

    @classmethod
    def parse(cls, netlocstr: str | bytes) -> netloc:
        hostport = url_text(netlocstr).rsplit("@", 1)[-1]
        if ":" in hostport:
            host, port = hostport.split(":", 1)
        else:
            host, port = hostport, ""
        return cls((host, port))

    @property
    def host(self) -> str:
        return self[0]

    @property
    def port(self) -> str:
        return self[1]

    def __bool__(self) -> bool:
        return bool(self[0])

    def __str__(self) -> str:
        host, port = self
        return "%s:%s" % (host, port) if port else host


def localize(path: str | bytes, ddfs_data: str | None = None, disco_data: str | None = None) -> str:
    """``ddfs/<rest>`` -> ``<ddfs_data>/<rest>``, anything else -> ``<disco_data>/<rest>``."""
    prefix, _, rest = url_text(path).lstrip("/").partition("/")
    if prefix == "ddfs":
        base = ddfs_data if ddfs_data is not None else _settings()["DDFS_DATA"]
    else:
        base = disco_data if disco_data is not None else _settings()["DISCO_DATA"]
    return os.path.join(str(base), rest)


def urlsplit(
    url: str | bytes, localhost: Any = None, disco_port: Any = None, **kwargs: Any
) -> tuple[str, netloc, str]:
    """``(scheme, netloc, path)``, path without its leading ``/`` (7.2, master-api 9.3)."""
    url = url_text(url)
    scheme, rest = schemesplit(url)
    locstr, _, path = rest.partition("/")
    if scheme == "tag" and not path:
        return "tag", netloc(), locstr
    loc = netloc.parse(locstr)
    if scheme == "tag":
        return "tag", loc, path
    if not scheme:
        return "", netloc(), url
    port = str(disco_port if disco_port is not None else _settings()["DISCO_PORT"])
    if scheme == "disco" or (loc.port and loc.port == port):
        if localhost is True or (localhost and loc.host == localhost):
            return "file", netloc(), localize(path, **kwargs)
        if scheme == "disco":
            return "http", netloc((loc.host, port)), path
    return scheme, loc, path


def urljoin(parts: tuple[str, Any, str]) -> str:
    scheme, loc, path = parts
    return "%s%s%s" % ("%s://" % scheme if scheme else "", "%s/" % (loc,) if loc else "", path)


def urlresolve(url: str | bytes, master: str | None = None) -> str:
    """``dir://`` and ``disco://`` -> ``http://host:DISCO_PORT/path``; ``tag://`` -> the
    master's ``/ddfs/tag/<name>``; others are normalised (7.2)."""
    url = url_text(url)
    scheme, loc, path = urlsplit(url)
    if scheme == "dir":
        return urlresolve("disco://%s/%s" % (loc, path), master=master)
    if scheme == "tag":
        if loc:
            base = "http://%s" % (loc,) if loc.port else "disco://%s" % loc.host
        else:
            base = master or str(_settings()["DISCO_MASTER"])
        return urlresolve("%s/ddfs/tag/%s" % (base.rstrip("/"), path), master=master)
    if not scheme or not loc:
        raise DiscoError("URL %r does not have a scheme and a host" % (url,))
    return "%s://%s/%s" % (scheme, loc, path)


def urltoken(url: str | bytes) -> str | None:
    """The token of ``scheme://[user:]token@host/...``, or ``None``."""
    _, rest = schemesplit(url)
    locstr = rest.split("/", 1)[0]
    if "@" in locstr:
        auth = locstr.rsplit("@", 1)[0]
        return auth.split(":", 1)[-1]
    return None


def proxy_url(
    url: str | bytes, proxy: str | None = None, meth: str = "GET", to_master: bool = True
) -> str:
    """Route an ``http`` URL through ``DISCO_PROXY`` (7.2).

    [Quirk] only URLs without any ``.`` are proxied.
    """
    proxy = DISCO_PROXY if proxy is None else proxy
    url = url_text(url)
    scheme, loc, path = urlsplit(url)
    if proxy and scheme == "http" and "." not in url:
        if to_master:
            return "%s/%s" % (proxy.rstrip("/"), path)
        return "%s/proxy/%s/%s/%s" % (proxy.rstrip("/"), loc.host, meth, path)
    return url


def jobname(url: str | bytes) -> str:
    """The job name of a result URL: the component after ``disco/<host>/<hh>/`` (21.4)."""
    url = url_text(url)
    scheme, _, path = urlsplit(url, disco_port="")
    if scheme not in ("disco", "dir", "http", "https", "file", ""):
        raise DiscoError("Cannot parse jobname from %s" % url)
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts) - 3):
        if parts[i] == "disco" and len(parts[i + 2]) == 2:
            return parts[i + 3]
    if scheme in ("disco", "dir", "http") and len(parts) >= 2:
        return parts[-2]
    raise DiscoError("Cannot parse jobname from %s" % url)


def assert_url(url: str | bytes, master: str | None = None) -> None:
    scheme, loc, _ = urlsplit(url)
    if not (scheme and loc):
        raise DiscoError("Invalid URL %r: it needs a scheme and a host" % (url,))


# -- 7.3 inputs and index files ------------------------------------------------------------


def ispartitioned(input: Any) -> Any:
    input = url_text(input)
    if isinstance(input, str):
        return input.startswith("dir://")
    if isinstance(input, (list, tuple)):
        return len(input) if input and all(ispartitioned(i) for i in input) else False
    return False


def parse_index_line(line: bytes, url: str) -> tuple[int, str, int] | None:
    """``(label, url, size)`` of one index line (16.3), ``None`` for a blank line;
    ``DataError`` for anything else."""
    fields = line.split()
    if not fields:
        return None
    try:
        if len(fields) != 3:
            raise ValueError("3 fields expected")
        return int(fields[0]), fields[1].decode("utf-8"), int(fields[2])
    except (ValueError, UnicodeDecodeError):
        raise DataError("Corrupted index: invalid line %r" % line[:80], url) from None


def _read_local(path: str) -> bytes | None:
    """The bytes of the file at ``path``; ``None`` when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def read_index(dir: Any, task: Any = None) -> Iterator[tuple[int, str, int]]:
    """Yield ``(label, url, size)`` per line of an index file (16.3); ``DataError`` for a
    line that is not ``<int label> <url> <int size>``.

    An index on this node (``disco.locality.local_path``) is read from its file directly.
    ``task`` (not in 0.5) says which node we are on; by default the active task, if any.
    """
    if isinstance(dir, (list, tuple)):
        dir = dir[0]
    dir = url_text(dir)
    gz = dir.endswith(".gz")
    from disco.locality import local_path

    path = None if gz else local_path(dir, task)
    data = None if path is None else _read_local(path)
    if data is not None:  # (a shuffle reads thousands of them: no file object each)
        for line in io.BytesIO(data):
            entry = parse_index_line(line, dir)
            if entry is not None:
                yield entry
        return
    if schemesplit(dir)[0] in ("dir", "disco"):
        from disco.schemes import scheme_disco

        fd: Any = scheme_disco.open(dir, task=task)
    else:
        from disco.comm import open_url

        fd = open_url(dir)
    try:
        if gz:
            import gzip  # lazy: see the note at the top of this module

            stream: Any = gzip.GzipFile(fileobj=fd)
        else:
            stream = fd
        for line in stream:
            entry = parse_index_line(line, dir)
            if entry is not None:
                yield entry
    finally:
        fd.close()


def parse_dir(dir: Any, label: Any = None, *, task: Any = None) -> list[str]:
    """URLs listed in an index, sorted, only those of ``label`` unless it is ``None``."""
    entries = sorted(read_index(dir, task=task))
    return [url for lbl, url, _ in entries if label is None or lbl == label]


def inputexpand(input: Any, label: Any = None, settings: Any = None) -> list[Any]:
    """Expand one job input into replica sets (7.3)."""
    from disco.ddfs import DDFS, istag

    input = url_text(input)
    if ispartitioned(input) and label is not False:
        return list(zip(*(parse_dir(i, label=label) for i in iterify(input)), strict=False))
    if isinstance(input, (list, tuple)):
        return [inputlist(input, label=label, settings=settings)]
    if istag(input):
        ddfs = DDFS(settings=settings)  # ddfs.md 7.1: every replica list reachable
        found = list(ddfs.findtags([input]))
        if not found:  # the tag itself is missing (tags it names may be, as in 0.5)
            raise DiscoError(missing_tag_message(input, ddfs.master))
        return [replicas for _tag, _tags, blobs in found for replicas in blobs]
    return [input]


def missing_tag_message(input: Any, master: str) -> str:
    """Why a job over a tag that does not exist is refused (a bare word is a tag name)."""
    message = "Job input %s: no such tag in DDFS at %s" % (input, master)
    if isinstance(input, str) and not input.startswith("tag://"):
        message += " (a bare name is read as a DDFS tag; a file needs file:///absolute/path)"
    return message


def inputlist(inputs: Iterable[Any], **kwargs: Any) -> list[Any]:
    """Every input expanded (flattened one level), empty ones dropped."""
    return [entry for inp in inputs for entry in inputexpand(inp, **kwargs) if entry]


def deref(inputs: Iterable[Any], resolve: bool = False) -> Iterator[list[str]]:
    """One list of replica URLs per expanded input, optionally ``urlresolve``d."""
    fn = urlresolve if resolve else identity
    for entry in inputlist(inputs):
        yield [fn(url) for url in iterify(entry)]


# -- 7.4 OOB, external programs, sorting, misc ---------------------------------------------


def save_oob(host: str, name: str, key: str, value: bytes, ddfs_token: str | None = None) -> None:
    """Store ``value`` (bytes) as blob ``key`` in tag ``disco:job:oob:<name>``; a bad key
    or value is a ``DiscoError`` (``disco.oob``) and stores nothing."""
    from disco import oob
    from disco.ddfs import DDFS

    blob = (oob.check_value(value), oob.check_key(key))
    DDFS(host).push(oob.oob_tag(name), [blob], delayed=True, token=ddfs_token)


def load_oob(host: str, name: str, key: str) -> bytes | None:
    """Bytes of the newest blob named ``key`` in tag ``disco:job:oob:<name>`` (``None``
    when there is none); a missing tag raises ``CommError`` 404."""
    from disco.ddfs import DDFS

    for blob in DDFS(host).pull("disco:job:oob:%s" % name, blobfilter=lambda x: x == key):
        return blob.read()
    return None


def external(files: list[str]) -> dict[str, bytes]:
    """An external program for a classic job's ``map``/``reduce`` (library.md 10.5):
    ``files[0]`` is the executable, the other files are put beside it on the node."""
    from disco.worker.classic.external import package

    return package(files)


def format_size(num: float) -> str:
    for unit in (" bytes", "KB", "MB", "GB"):
        if num < 1024.0:
            return "%3.1f%s" % (num, unit)
        num /= 1024.0
    return "%3.1f%s" % (num, "TB")


def msg(message: Any) -> None:
    """[Not in 0.5] shim: print (a message event inside a task)."""
    print(message)


def err(message: str) -> None:
    """[Not in 0.5] shim."""
    raise DiscoError(message)


def data_err(message: str, url: Any) -> None:
    """[Not in 0.5] shim."""
    raise DataError(message, url)


def encode(b: bytes) -> bytes:
    """Escape a value for the sort file: 0x01 -> 01 01, 0x02 -> 02 02, 0x00 -> 02 01 02."""
    return (
        b.replace(b"\x01", b"\x01\x01")
        .replace(b"\x02", b"\x02\x02")
        .replace(b"\x00", b"\x02\x01\x02")
    )


def decode(b: bytes) -> bytes:
    return (
        b.replace(b"\x02\x01\x02", b"\x00")
        .replace(b"\x02\x02", b"\x02")
        .replace(b"\x01\x01", b"\x01")
    )


def unix_sort(filename: str, sort_buffer_size: str | int = "10%") -> None:
    """Sort the 16.5 file in place with the system ``sort`` (``LC_ALL=C``)."""
    if not os.path.isfile(filename):
        raise DataError("Invalid sort input file %s" % filename, filename)
    import subprocess  # lazy: see the note at the top of this module

    argv, extra_env = sort_cmd(filename, sort_buffer_size)
    env = dict(os.environ, **extra_env)
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, check=False)
    except OSError as e:
        raise DataError("Sorting %s failed: %s" % (filename, e), filename)
    if proc.returncode != 0:
        raise DataError(
            "Sorting %s failed: %s" % (filename, proc.stderr.decode("utf-8", "replace")), filename
        )


def sort_reader(fd: Any, fname: str, read_buffer_size: int = 8192) -> Iterator[tuple[bytes, bytes]]:
    """Yield ``(key, escaped_value)`` from a sorted 16.5 file (no record size limit)."""
    buf = b""
    while True:
        chunk = fd.read(read_buffer_size)
        if not chunk:
            break
        buf += chunk
        *records, buf = buf.split(b"\x00")
        for record in records:
            k, sep, v = record.partition(b"\xff")
            if not sep:
                raise DataError("Corrupted sort file: a record has no separator", fname)
            yield k, v
    if buf:
        raise DataError("Truncated sort file: %d bytes after the last record" % len(buf), fname)


def _send(worker: Any, message: str) -> None:
    if worker is not None and hasattr(worker, "send"):
        worker.send("MSG", message)


#: 16.5 names protocol 0; ``unix_sort`` files made here pickle with protocol 4, which
#: pickles bytes about ten times faster (``encode`` still escapes every 0x00).
SORT_PICKLE_PROTOCOL = 4

sort_key_kind = recordsort.key_kind


def disk_sort(
    worker: Any,
    input: Iterable[tuple[Any, Any]],
    filename: str,
    sort_buffer_size: str | int = "10%",
) -> Iterator[tuple[Any, Any]]:
    """``(key, value)`` pairs sorted by key (16.5), equal keys in input order.

    Keys are all ``bytes`` (byte order) or all ``str`` (code-point order, by their UTF-8
    bytes, given back as ``str``); see ``sort_key_kind``.  The pairs are sorted in memory
    while they fit ``sort_buffer_size`` (GNU sort's ``-S`` syntax), else in sorted runs
    spilled to ``filename.run<N>`` and merged (``disco.recordsort``).

    Nothing is read before the first record is asked for (as from a generator); a
    ``for`` loop then walks the sorted records without Python code per record.
    """

    def sort() -> Iterable[tuple[Any, Any]]:
        sorter = recordsort.RecordSort(filename, recordsort.buffer_bytes(sort_buffer_size))
        _send(worker, "Downloading %s" % filename)
        try:
            sorter.add_all(input)
        except BaseException:
            sorter.remove_runs()
            raise
        _send(worker, "Downloaded %s OK" % format_size(sorter.total))
        _send(worker, "Sorting %s..." % filename)
        records = sorter.sorted()
        _send(worker, "Finished sorting")
        return records

    return recordsort.LazyRecords(sort)
