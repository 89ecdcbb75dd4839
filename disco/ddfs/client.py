"""The DDFS client: ``DDFS`` (ddfs.md 3.2-3.5).

Owns the client side of DDFS: reading and writing tags and attributes on the master's
``/ddfs/...`` endpoints, walking tag graphs, and uploading blobs (``push``, ``chunk``)
straight to the nodes' PUT servers.  HTTP goes through ``disco.comm`` and its one
connection pool (``disco.httpclient``), with the client's ``RetryPolicy``; URLs are
shaped by ``disco.util`` and
``disco.ddfs.tagurl``.  Errors surface as ``disco.error.CommError`` whose ``code`` is the
HTTP status (``None`` when no reply came) and whose message is the server's text.
"""

from __future__ import annotations

import errno
import gzip
import io
import json
import logging
import os
import random
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from disco import auth, comm, httpclient
from disco.ddfs.names import safe_name
from disco.ddfs.tagurl import (
    canonizetag,
    canonizetags,
    istag,
    relativizetags,
    tagname,
)
from disco.error import CommError
from disco.fileutils import CHUNK_SIZE, MAX_RECORD_SIZE, Chunker
from disco.httpclient import RetryPolicy
from disco.settings import DiscoSettings
from disco.util import partition, urlresolve, urlsplit, urltoken

logger = logging.getLogger(__name__)

__all__ = ["DDFS", "BlobSource"]

# A blob to upload: raw bytes, or the path of a local file (streamed, not read into memory).
BlobSource = bytes | str


class DDFS:
    """A client of the DDFS master at ``master`` (ddfs.md 3.2).

    :param master: the master's URL (``http://host:port`` or ``disco://host``); default
        ``DISCO_MASTER``.
    :param proxy: send every request through this proxy (default ``DISCO_PROXY``).
    :param settings: a ``DiscoSettings`` (tokens, ports); default ``DiscoSettings()``.
    :param retry: a ``disco.httpclient.RetryPolicy`` for every request (default
        ``httpclient.DEFAULT_RETRY``: 503 replies and failed connections, 10 tries).

    Every ``tag`` argument may be a tag name, a ``tag://`` URL (``tag://host:port/name``
    for another master, ``tag://token@/name`` to carry a token) or a list whose first
    item is one of those.
    """

    def __init__(
        self,
        master: Any = None,
        proxy: str | None = None,
        settings: Any = None,
        retry: RetryPolicy | None = None,
    ):
        self.retry = retry
        self.settings = settings if settings is not None else DiscoSettings()
        self.proxy = proxy or self.settings["DISCO_PROXY"] or ""
        self.master = str(self.proxy or master or self.settings["DISCO_MASTER"])
        self.settings["DISCO_MASTER"] = self.master

    def __repr__(self) -> str:
        return "DDFS master at %s" % self.master

    # -- names (class methods) -------------------------------------------------------------
    @classmethod
    def safe_name(cls, name: str | bytes) -> str:
        """``name`` with every character outside ``[A-Za-z0-9_\\-@:]`` replaced by ``_``."""
        return safe_name(name)

    @classmethod
    def blob_name(cls, url: str) -> str:
        """The blob prefix of a blob URL: its last path segment up to the first ``$``."""
        return url.split("/")[-1].split("$")[0]

    @classmethod
    def job_blob(cls, jobname: str, filename: str) -> str:
        return "disco:blob:%s:%s" % (jobname, os.path.basename(filename))

    @classmethod
    def job_oob(cls, jobname: str) -> str:
        """The tag holding the out-of-band results of a job."""
        return "disco:job:oob:%s" % jobname

    @classmethod
    def job_tag(cls, jobname: str) -> str:
        """The tag of the legacy ``save()``."""
        return "disco:job:results:%s" % jobname

    # -- reading tags ----------------------------------------------------------------------
    def get(self, tag: Any, token: str | None = None) -> dict[str, Any]:
        """The tag document (``version``, ``id``, ``last-modified``, ``urls``, ``user-data``)."""
        return self._json("GET", self._tag_url(tag), token=self._token(tag, token, "GET"))

    def urls(self, tag: Any, token: str | None = None) -> list[list[str]]:
        """The tag's entries (lists of replica URLs), newest first."""
        return self.get(tag, token=token)["urls"]

    def attrs(self, tag: Any, token: str | None = None) -> dict[str, str]:
        """The tag's user attributes."""
        return self.get(tag, token=token).get("user-data", {})

    def getattr(self, tag: Any, attr: str, token: str | None = None) -> Any:
        """The value of attribute ``attr`` (``ddfs:read-token`` etc. included)."""
        return self._json("GET", self._attr_url(tag, attr), token=self._token(tag, token, "GET"))

    def exists(self, tag: Any) -> bool:
        """Whether the tag exists: asks without any token, so a 401 also means "yes"."""
        try:
            comm.request(
                "GET", self._tag_url(tag), headers=self._auth(), token=None, retry=self.retry
            )
        except CommError as e:
            if e.code == 401 and not auth.is_auth_failure(e.code, e.msg):
                return True
            if e.code in (403, 404):
                return False
            raise
        return True

    def list(self, prefix: str = "") -> list[str]:
        """The names of all tags starting with ``prefix``, sorted."""
        return self._json("GET", self._master_url("ddfs/tags/%s" % _quote(prefix)))

    def tags(self, tag: Any, token: str | None = None) -> list[str]:
        """[Not in 0.5] the canonical URLs of the tags ``tag`` links to directly."""
        children, _blobs = partition(self.urls(tag, token=token), istag)
        return relativizetags(canonizetags(children), tag)

    # -- writing tags ----------------------------------------------------------------------
    def tag(
        self,
        tag: Any,
        urls: Sequence[Sequence[str]],
        token: str | None = None,
        delayed: bool = False,
        update: bool = False,
        **flags: Any,
    ) -> list[str]:
        """Append ``urls`` (a list of replica lists) to the tag, creating it if needed.

        :param update: skip entries whose name (blob prefix or tag name) is already there.
        :param delayed: let the master merge this with other appends within ~1 s.
        Returns the URLs of the tag version written (or of the current one if unchanged).
        """
        query = {"delayed": delayed, "update": update, **flags}
        qs = "&".join("%s=%s" % (key, "1" if value else "") for key, value in query.items())
        url = "%s?%s" % (self._tag_url(tag), qs)
        return self._json("POST", url, _entries(urls), token=self._token(tag, token, "POST"))

    def put(self, tag: Any, urls: Sequence[Sequence[str]], token: str | None = None) -> list[str]:
        """Replace the tag's entries with ``urls`` (creates the tag if needed)."""
        return self._json(
            "PUT", self._tag_url(tag), _entries(urls), token=self._token(tag, token, "PUT")
        )

    def setattr(self, tag: Any, attr: str, val: Any, token: str | None = None) -> list[str]:
        """Set attribute ``attr`` (user attributes are strings) and return the tag's URLs."""
        return self._json(
            "PUT", self._attr_url(tag, attr), val, token=self._token(tag, token, "PUT")
        )

    def delattr(self, tag: Any, attr: str, token: str | None = None) -> str:
        """Delete attribute ``attr`` (an unknown one is no error); returns ``"deleted"``."""
        return self._json(
            "DELETE", self._attr_url(tag, attr), token=self._token(tag, token, "DELETE")
        )

    def delete(self, tag: Any, token: str | None = None) -> str:
        """Delete the tag (a missing one is no error); returns ``"deleted"``."""
        return self._json("DELETE", self._tag_url(tag), token=self._token(tag, token, "DELETE"))

    # -- walking tag graphs ----------------------------------------------------------------
    def walk(
        self,
        tag: Any,
        ignore_missing: bool = True,
        tagpath: tuple[str, ...] = (),
        token: str | None = None,
    ) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
        """Depth first from ``tag``: ``(tagpath, child tag URLs, non-tag entries)``.

        A missing tag yields ``(tagpath, (), ())`` with ``ignore_missing``; any other error
        yields ``(tagpath, None, None)`` and is raised.  A tag that links to itself
        (directly or not) is followed once per path, not for ever: a tag already on
        ``tagpath`` is not entered again.
        """
        tagpath = tagpath + (canonizetag(tag),)
        try:
            children, blobs = partition(self.urls(tag, token=token), istag)
            children = canonizetags(children)
        except CommError as e:
            if ignore_missing and e.code == 404:
                yield tagpath, (), ()
                return
            yield tagpath, None, None
            raise
        yield tagpath, children, blobs
        for child in relativizetags(children, tag):
            if child in tagpath:
                continue
            yield from self.walk(child, ignore_missing=ignore_missing, tagpath=tagpath, token=token)

    def findtags(
        self, tags: Any = (), ignore_missing: bool = True, token: str | None = None
    ) -> Iterator[tuple[str, list[str], list[Any]]]:
        """Breadth first over every tag reachable from ``tags``, each visited once:
        ``(tag URL, child tag URLs, non-tag entries)``.  Missing tags (404) are skipped
        when ``ignore_missing``."""
        queue = canonizetags(tags)
        seen: set[str] = set()
        while queue:
            tag = queue.pop(0)
            if tag in seen:
                continue
            seen.add(tag)
            try:
                children, blobs = partition(self.urls(tag, token=token), istag)
            except CommError as e:
                if ignore_missing and e.code == 404:
                    continue
                raise
            children = canonizetags(children)
            yield tag, children, blobs
            queue.extend(relativizetags(children, tag))

    def blobs(
        self, tag: Any, ignore_missing: bool = True, token: str | None = None
    ) -> Iterator[list[str]]:
        """Every replica list reachable from ``tag`` (through tag-of-tags), in walk order."""
        for _tagpath, children, blobs in self.walk(tag, ignore_missing=ignore_missing, token=token):
            if children != blobs:
                yield from blobs

    def pull(
        self,
        tag: Any,
        blobfilter: Callable[[str], Any] = lambda name: True,
        token: str | None = None,
    ) -> Iterator[Any]:
        """Open the blobs of the tag's own entries whose prefix passes ``blobfilter``.

        Yields a readable file (``.url``, ``.read()``, ``len()``) per entry, newest first,
        from a random replica that opens; if none opens the last error is raised.
        """
        for replicas in self.urls(tag, token=token):
            if not replicas or not blobfilter(self.blob_name(replicas[0])):
                continue
            yield self._open_any(random.sample(list(replicas), len(replicas)))

    def _open_any(self, replicas: Sequence[str]) -> Any:
        error: CommError | None = None
        for url in replicas:
            try:
                target = self.node_url(url, "GET")
                return comm.open_remote(target, headers=self._auth(), retry=self.retry)
            except CommError as e:
                logger.warning("cannot open replica %s: %s", url, e)
                error = e
        assert error is not None
        raise error

    # -- uploading blobs -------------------------------------------------------------------
    def new_blob(
        self,
        prefix: str,
        replicas: int | None = None,
        exclude: Iterable[str] = (),
        include: Iterable[str] = (),
    ) -> list[str]:
        """PUT URLs on distinct nodes for a new blob named ``prefix`` (ddfs.md 2.4.1)."""
        params = [
            ("exclude", ",".join(exclude)),
            ("include", ",".join(include)),
            ("replicas", "" if replicas is None else str(replicas)),
        ]
        qs = urllib.parse.urlencode([(k, v) for k, v in params if v])
        path = "ddfs/new_blob/%s" % _quote(prefix)
        return self._json("GET", self._master_url(path + ("?%s" % qs if qs else "")))

    def push(
        self,
        tag: Any,
        files: Iterable[Any],
        replicas: int | None = None,
        forceon: Iterable[str] = (),
        retries: int = 10,
        delayed: bool = False,
        update: bool = False,
        token: str | None = None,
    ) -> tuple[list[str], list[list[str]]]:
        """Upload every file as a blob, then append the blobs to ``tag``.

        :param files: paths (the blob prefix is the file name made safe), or
            ``(path, prefix)``, ``(fileobj, prefix)`` or ``(bytes, prefix)`` pairs.
        :param replicas: copies of each blob (default ``DDFS_BLOB_REPLICAS``).
        :param forceon: hosts that must hold a copy.
        :param retries: how often a 503 reply is retried, and how many times a blob is
            sent again to other nodes after a node failed.
        Returns ``(tag version URLs, [replica URLs of each blob])``.
        """
        blobs = [
            self.push_blob(source, prefix, replicas, forceon, retries)
            for source, prefix in (_aim(item) for item in files)
        ]
        return self.tag(tag, blobs, token=token, delayed=delayed, update=update), blobs

    def push_blob(
        self,
        source: Any,
        prefix: str,
        replicas: int | None = None,
        forceon: Iterable[str] = (),
        retries: int = 10,
    ) -> list[str]:
        """[Not in 0.5] upload one blob (no tagging); returns its replica URLs.

        A node that fails is excluded and the whole blob is sent again under a new id to
        other nodes (copies already written become orphans that GC removes), at most
        ``retries`` times.
        """
        body = _blob_body(source)
        exclude: list[str] = []
        forceon = list(forceon)
        for restart in range(retries + 1):
            targets = self.new_blob(prefix, replicas=replicas, exclude=exclude, include=forceon)
            replies, failed = self._put_all(targets, body, retries)
            if not failed:
                return [json.loads(reply) for reply in replies]
            for error in failed:  # another node will not take a wrong token either
                if auth.is_auth_failure(error.code, error.msg):
                    raise error
            hosts = [urlsplit(error.url)[1].host for error in failed]
            logger.warning(
                "blob %s: upload to %s failed (%s); sending it to other nodes (%d/%d)",
                prefix,
                ", ".join(hosts),
                failed[0],
                restart + 1,
                retries,
            )
            exclude.extend(h for h in hosts if h not in exclude)
        raise failed[0]

    def _put_all(
        self, targets: Sequence[str], body: BlobSource, retries: int
    ) -> tuple[list[bytes], list[CommError]]:
        """PUT ``body`` to every target in parallel: (reply bodies, errors)."""
        if not targets:
            return [], []
        with ThreadPoolExecutor(max_workers=len(targets)) as pool:
            outcomes = list(pool.map(lambda url: self._put(url, body, retries), targets))
        errors = [o for o in outcomes if isinstance(o, CommError)]
        return [o for o in outcomes if isinstance(o, bytes)], errors

    def _put(self, url: str, body: BlobSource, retries: int) -> bytes | CommError:
        """One blob PUT: 503 is retried ``retries`` times; a dead node is not retried (the
        caller picks another node instead)."""
        target = self.node_url(url, "PUT")
        policy = (self.retry or httpclient.DEFAULT_RETRY).replace(
            attempts=max(1, retries), connection_errors=False
        )
        try:
            if isinstance(body, str):
                with open(body, "rb") as f:  # streamed, never read whole
                    resp = comm.raw_request("PUT", target, f, self._auth(), retry=policy)
            else:
                resp = comm.raw_request("PUT", target, body, self._auth(), retry=policy)
        except CommError as e:
            return CommError("Upload failed: %s" % e.msg, url, e.code)
        if 200 <= resp.status < 300:
            return resp.body
        text = resp.body.decode("utf-8", "replace")
        return CommError("Upload failed: %s" % text, url, resp.status)

    def chunk(
        self,
        tag: Any,
        urls: Iterable[Any],
        replicas: int | None = None,
        forceon: Iterable[str] = (),
        retries: int = 10,
        delayed: bool = False,
        update: bool = False,
        token: str | None = None,
        chunk_size: int = CHUNK_SIZE,
        max_record_size: int = MAX_RECORD_SIZE,
        **kwargs: Any,
    ) -> tuple[list[str], list[list[str]]]:
        """Re-encode the records of ``urls`` into blobs of the internal format (ddfs.md 3.4).

        Each input (a URL or a list of replicas) is read with ``result_iterator`` (one
        record per line unless ``reader`` is given in ``kwargs``), packed into chunks of
        about ``chunk_size`` bytes that never split a record, and each chunk is pushed as
        blob ``<input file name>-<n>``.  All blobs are then appended to ``tag`` at once.
        """
        from disco.core import result_iterator

        kwargs.setdefault("reader", None)
        chunker = Chunker(chunk_size=chunk_size, max_record_size=max_record_size)
        blobs: list[list[str]] = []
        # Each chunk is pushed while the next one is made: one upload at a time, in order
        # (leaving the pool waits for an upload still running when making a chunk fails).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ddfs-chunk-push") as pool:
            pushing: Future[list[str]] | None = None
            for entry in urls:
                first = entry if isinstance(entry, str) else list(entry)[0]
                records = _local_lines(entry, kwargs) or result_iterator([entry], **kwargs)
                for n, data in enumerate(chunker.chunks(records)):
                    prefix = safe_name("%s-%d" % (os.path.basename(first), n))
                    if pushing is not None:
                        blobs.append(pushing.result())
                    pushing = pool.submit(self.push_blob, data, prefix, replicas, forceon, retries)
            if pushing is not None:
                blobs.append(pushing.result())
        return self.tag(tag, blobs, token=token, delayed=delayed, update=update), blobs

    def save(self, jobname: str, paths: Iterable[str], retries: int = 600) -> str:
        """Legacy: push ``paths`` to ``job_tag(jobname)``; returns the tag name."""
        tag = self.job_tag(jobname)
        files = [(path, self.job_blob(jobname, path)) for path in paths]
        self.push(tag, files, retries=retries, delayed=True, update=True)
        return tag

    def tarblobs(
        self,
        tarball: str,
        compress: bool = True,
        include: str | None = None,
        exclude: str | None = None,
    ) -> Iterator[tuple[str, Any, int]]:
        """``(blob prefix, file object, size)`` per regular member of a tar archive.

        Members whose name lacks ``include`` or contains ``exclude`` are skipped; with
        ``compress`` each member is gzipped (level 2) and ``_gz`` ends its prefix.
        """
        import tarfile  # only for tarball pushes: not imported with the master

        with tarfile.open(tarball) as tar:
            for member in tar:
                if not member.isfile():
                    continue
                if include and include not in member.name:
                    continue
                if exclude and exclude in member.name:
                    continue
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted is not None else b""
                if compress:
                    data = gzip.compress(data, compresslevel=2)
                suffix = "_gz" if compress else ""
                yield safe_name(member.name) + suffix, io.BytesIO(data), member.size

    # -- plumbing --------------------------------------------------------------------------
    def _token(self, tag: Any, token: str | None, method: str) -> str | None:
        """The token of a request (ddfs.md 3.5): ``token``, else one in the tag URL, else
        ``DDFS_READ_TOKEN`` for reads and ``DDFS_WRITE_TOKEN`` for writes."""
        if token is not None:
            return token
        found = urltoken(canonizetag(tag))
        if found is not None:
            return found
        setting = self.settings["DDFS_READ_TOKEN" if method == "GET" else "DDFS_WRITE_TOKEN"]
        return setting if isinstance(setting, str) else None

    def _master_url(self, path: str) -> str:
        return urlresolve("%s/%s" % (self.master.rstrip("/"), path), master=self.master)

    def _tag_url(self, tag: Any) -> str:
        canonical = canonizetag(tag)
        _scheme, loc, name = urlsplit(canonical)
        if loc:  # a tag on another master: tag://host[:port]/name
            return urlresolve("tag://%s/%s" % (loc, _quote(name)), master=self.master)
        return self._master_url("ddfs/tag/%s" % _quote(tagname(canonical)))

    def _attr_url(self, tag: Any, attr: str) -> str:
        return "%s/%s" % (self._tag_url(tag), _quote(attr, safe="/:@$"))

    def node_url(self, url: str, method: str = "GET") -> str:
        """A node URL (``disco://`` resolved), through ``/proxy/HOST/METHOD/`` if proxied."""
        if url.startswith("disco://"):
            url = urlresolve(url)
        if not self.proxy:
            return url
        _scheme, loc, path = urlsplit(url)
        return "%s/proxy/%s/%s/%s" % (self.proxy.rstrip("/"), loc.host, method, path)

    def _json(self, method: str, url: str, value: Any = None, token: str | None = None) -> Any:
        data = None if method in ("GET", "DELETE") else json.dumps(value)
        body = comm.request(method, url, data, self._auth(), token=token, retry=self.retry).body
        return json.loads(body.decode("utf-8"))

    def _auth(self) -> dict[str, str]:
        """The cluster's auth header (``DISCO_AUTH_TOKEN``) for the master and the nodes."""
        return auth.headers(self.settings)


def _local_lines(entry: Any, kwargs: dict[str, Any]) -> Iterator[bytes] | None:
    """The lines of a local file when ``chunk`` reads it with the defaults: the same
    records ``result_iterator`` gives, without its per-record overhead."""
    if kwargs != {"reader": None} or not isinstance(entry, str):
        return None
    path = entry[len("file://") :] if entry.startswith("file://") else entry
    if "://" in path or not os.path.isfile(path):
        return None

    def lines() -> Iterator[bytes]:
        with open(path, "rb") as f:
            yield from f

    return lines()


def _quote(text: str, safe: str = ":@$") -> str:
    return urllib.parse.quote(text, safe=safe)


def _entries(urls: Sequence[Sequence[str]]) -> list[list[str]]:
    return [list(entry) for entry in urls]


def _aim(item: Any) -> tuple[Any, str]:
    """``path`` -> ``(path, safe file name)``; ``(source, prefix)`` stays as it is."""
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        return path, safe_name(os.path.basename(path))
    source, prefix = item
    return source, prefix


def _blob_body(source: Any) -> BlobSource:
    """A path stays a path (streamed per replica); bytes and file objects become bytes."""
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.isfile(path):
            raise FileNotFoundError(errno.ENOENT, "No such file to push", path)
        return path
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    data = source.read()
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)
