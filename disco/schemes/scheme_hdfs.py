"""``hdfs://<namenode>:<port>:/<path>``: a file of HDFS read through WebHDFS (library.md 13).

The URL becomes ``http://<namenode>:<port>/webhdfs/v1/<path>?op=OPEN``; the namenode
redirects to a datanode, which the HTTP reader follows.  No Hadoop library is needed.
The address may also be written without the colon after the port
(``hdfs://nn:9870/path``), and the path with ``//`` (``hdfs://nn:9870://path``).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from disco import comm
from disco.error import DiscoError
from disco.util import schemesplit

_ADDRESS = re.compile(r"^(?P<host>[^:/]+):(?P<port>\d+):?/+(?P<path>.*)$")


def webhdfs_url(url: str) -> str:
    """The WebHDFS ``OPEN`` URL of an ``hdfs://`` URL."""
    m = _ADDRESS.match(schemesplit(url)[1])
    if m is None or not m.group("path"):
        raise DiscoError("Bad HDFS URL %r: expected hdfs://<namenode>:<port>:/<path>" % url)
    path = urllib.parse.quote(m.group("path"))
    return "http://%s:%s/webhdfs/v1/%s?op=OPEN" % (m.group("host"), m.group("port"), path)


def open(url: str, task: Any = None) -> comm.Connection:  # noqa: A001 - scheme API
    return comm.open_remote(webhdfs_url(url))


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    conn = open(url)
    return conn, len(conn), url
