"""No request escapes the data directories (issue 8.1, docs/decisions.md "Names and paths").

Against a real master with two nodes (``localhost``, served by the master, and
``127.0.0.2`` with its own data and blob upload servers), every route that takes a name
or a path gets a table of payloads: ``../`` at several depths behind ``./`` prefixes,
``%2e%2e`` and ``%2f`` spellings, ``%00`` and NUL, backslashes, absolute paths, over-long
names and lone surrogates; symlinks placed in the data directories point outside.
Sentinel files and directories live next to the data root (in the test's tmp dir);
afterwards they must be intact, nothing new may have appeared outside the data root, and
no answer may carry a sentinel's content or a server path.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse

import pytest

from disco.embedded import EmbeddedMaster
from disco.master.api import ctrl
from tests.conftest import _assert_no_leaked_workers, child_pids, poll_for
from tests.rawhttp import send_raw

SECRET = b"SENTINEL-SECRET-4242"
NODE = "127.0.0.2"
# A job name and the symlinks planted for it (see ``plant_symlinks``).
SYM_JOB = "Sym@6a4:1:2"
SYM_HH_JOB = "SymHH@6a4:1:2"
SYM_DATA_JOB = "SymData@6a4:1:2"


def _climbs() -> list[str]:
    """``../`` at depths 1..9, behind ``""``, ``./`` and ``././`` (and ``.//``) prefixes."""
    found = []
    for depth in range(1, 10):
        for prefix in ("", "./", "././", ".//", "./" * depth):
            found.append(prefix + "../" * depth + "victim")
            found.append(prefix + "/".join([".."] * depth) + "/victim/secret")
    return found


def names(tmp_path) -> list[str]:
    """Decoded payloads (what a handler would see): for JSON bodies and, quoted, URLs."""
    victim = str(tmp_path / "victim")
    return _climbs() + [
        "..",
        ".",
        "../",
        "..\\..\\victim",
        "a/../../victim",
        victim,
        victim + "/secret",
        "/etc/passwd",
        "//etc/passwd",
        "victim\0",
        "..\0/victim",
        "\0",
        "x" * 256,
        "x" * 5000,
        "../" * 300 + "victim",
        "\ud800",
        "ok\udcff/../..",
        "job\n../victim",
    ]


def url_payloads(tmp_path) -> list[str]:
    """Payloads as sent in a URL (already encoded): quoted ``names`` and raw spellings."""
    quoted = [
        urllib.parse.quote(n, safe="/", errors="surrogatepass")
        for n in names(tmp_path)
        if "\0" not in n
    ]
    raw = []
    for depth in (1, 2, 4, 6, 8):
        raw += [
            "%2e%2e/" * depth + "victim/secret",
            "%2E%2E%2F" * depth + "victim%2Fsecret",
            "..%2f" * depth + "victim%2fsecret",
            ".%2e/" * depth + "victim/secret",
            "./%2e%2e/" * depth + "victim/secret",
            "%252e%252e/" * depth + "victim/secret",
        ]
    raw += [
        "victim%00",
        "%00",
        "..%00/victim",
        "%2fetc%2fpasswd",
        urllib.parse.quote(str(tmp_path / "victim" / "secret"), safe=""),
        "%ED%A0%80",  # a UTF-8 encoded lone surrogate
        "%ff%fe",
    ]
    return quoted + raw


def snapshot(top: str, skip: str) -> dict[str, str]:
    """Every path below ``top`` (not below ``skip``) with its content digest or kind."""
    found: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(top, followlinks=False):
        if os.path.abspath(dirpath).startswith(skip):
            dirs[:] = []
            continue
        for d in dirs:
            found[os.path.join(dirpath, d)] = "dir"
        for f in files:
            path = os.path.join(dirpath, f)
            if os.path.islink(path):
                found[path] = "link"
                continue
            with open(path, "rb") as fh:
                found[path] = hashlib.sha1(fh.read()).hexdigest()
    return found


def make_sentinels(tmp_path) -> None:
    victim = tmp_path / "victim"
    (victim / "inner").mkdir(parents=True)
    for rel in ("secret", "events", "jobfile", "inner/secret"):
        (victim / rel).write_bytes(SECRET + b" " + rel.encode() + b"\n")
    (tmp_path / "victim-file").write_bytes(SECRET)
    os.symlink(victim, tmp_path / "victim-link")  # an outside link to the outside


class Raw:
    """Byte-exact requests (no client-side normalisation of ``..`` or encodings)."""

    def __init__(self, m: EmbeddedMaster, tmp_path) -> None:
        self.m = m
        self.root = str(tmp_path / "disco")
        self.answers: list[tuple[str, int, bytes]] = []

    def send(
        self,
        path: str,
        method: str = "GET",
        body: bytes | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> tuple[int, bytes]:
        status, data = send_raw(port or self.m.port, method, path, body, host=host)
        self.answers.append(("%s %s:%s%s" % (method, host, port, path), status, data))
        assert status < 500, (method, path, status, data)
        assert SECRET not in data, (method, path, status, data)
        return status, data

    def post_json(self, op: str, value: object) -> tuple[int, bytes]:
        body = json.dumps(value).encode()  # "\ud800" is sent as its JSON escape
        return self.send("/disco/ctrl/" + op, "POST", body)


@pytest.fixture
def two_nodes(tmp_path):
    before = child_pids()
    with EmbeddedMaster(
        root=tmp_path / "disco", nodes=[("localhost", 1), (NODE, 1)], retry_delay=0.0
    ) as m:
        yield m
    _assert_no_leaked_workers(before)


def plant_symlinks(m: EmbeddedMaster, tmp_path) -> None:
    """Symlinks inside the data directories that lead out of them."""
    from disco.master.events import hash_dir

    cfg = m.server.config
    victim = str(tmp_path / "victim")
    hh = os.path.join(cfg.master_root, hash_dir(SYM_JOB))
    os.makedirs(hh, exist_ok=True)
    os.symlink(victim, os.path.join(hh, SYM_JOB))  # a job's master directory
    os.makedirs(os.path.join(str(tmp_path), SYM_HH_JOB), exist_ok=True)
    (tmp_path / SYM_HH_JOB / "events").write_bytes(SECRET)
    hh2 = os.path.join(cfg.master_root, hash_dir(SYM_HH_JOB))
    if not os.path.exists(hh2):
        os.symlink(str(tmp_path), hh2)  # a whole hash directory
    for host in ("localhost", NODE):
        base = os.path.join(cfg.disco_data, host)
        os.makedirs(os.path.join(base, hash_dir(SYM_DATA_JOB)), exist_ok=True)
        os.symlink(victim, os.path.join(base, "link"))
        os.symlink(victim, os.path.join(base, hash_dir(SYM_DATA_JOB), SYM_DATA_JOB))
        ddfs_root = m.server.backend.local_ddfs_node(host).root
        os.makedirs(os.path.join(ddfs_root, "vol0", "blob"), exist_ok=True)
        os.symlink(victim, os.path.join(ddfs_root, "vol0", "blob", "zz"))
        os.symlink(os.path.join(victim, "secret"), os.path.join(ddfs_root, "vol0", "leak"))
    www = cfg.www_root
    if os.path.isdir(www) and os.access(www, os.W_OK):
        os.symlink(victim, os.path.join(www, "escape-link"))


def test_no_route_reads_writes_or_deletes_outside_the_data(two_nodes, tmp_path):
    m = two_nodes
    make_sentinels(tmp_path)
    plant_symlinks(m, tmp_path)
    data_root = os.path.abspath(str(tmp_path / "disco"))
    before = snapshot(str(tmp_path), data_root)
    raw = Raw(m, tmp_path)
    put_port = m.server.config.put_port
    poll_for(lambda: raw.send("/disco/x", host=NODE)[0] == 404, 20, "the node's data server")

    # The routes work at all: a planted file inside the data root is served.
    inside = os.path.join(m.server.config.disco_data, "localhost", "plain")
    with open(inside, "wb") as f:
        f.write(b"inside")
    assert raw.send("/disco/localhost/plain") == (200, b"inside")
    assert raw.send("/disco/localhost/plain", host=NODE)[0] == 200

    decoded = names(tmp_path) + [SYM_JOB, SYM_HH_JOB, SYM_DATA_JOB]
    for name in decoded:
        raw.post_json("kill_job", name)
        raw.post_json("clean_job", name)
        raw.post_json("purge_job", name)
        raw.post_json("get_results", [0, [name]])
        raw.post_json("save_config_table", [[name, "1"], ["localhost", "1"], [NODE, "1"]])
        for op in ("blacklist", "whitelist", "gc_blacklist", "gc_whitelist"):
            raw.post_json(op, name)
        raw.send("/ddfs/ctrl/hosted_tags", "POST", json.dumps(name).encode())
        raw.send("/ddfs/tag/t:ok", "PUT", json.dumps(name).encode())  # as an attribute value
        raw.send("/ddfs/tag/t:ok", "POST", json.dumps([[name]]).encode())  # as a URL

    encoded = url_payloads(tmp_path) + [SYM_JOB, SYM_HH_JOB, SYM_DATA_JOB]
    for p in encoded:
        for op in ("jobinfo", "jobevents", "rawevents", "parameters"):
            raw.send("/disco/ctrl/%s?name=%s" % (op, p))
        raw.send("/disco/ctrl/jobevents?name=%s&filter=secret" % p)
        raw.send("/disco/ctrl/get_stageresults?name=%s&stage=map" % p)
        raw.send("/disco/ctrl/get_stageresults?name=Gone@1:2:3&stage=%s" % p)
        for prefix in ("/disco/", "/disco/localhost/", "/ddfs/", "/ddfs/vol0/blob/", "/"):
            raw.send(prefix + p)
            raw.send("/proxy/localhost/GET" + prefix + p)
        for prefix in ("/disco/", "/disco/%s/" % NODE, "/ddfs/", "/ddfs/vol0/"):
            raw.send(prefix + p, host=NODE)
            raw.send(prefix + p, "HEAD", host=NODE)
        raw.send("/ddfs/new_blob/" + p)
        raw.send("/ddfs/tags/" + p)
        for method in ("GET", "PUT", "POST", "DELETE"):
            raw.send("/ddfs/tag/" + p, method, b'[["x"]]' if method != "PUT" else b'"v"')
            raw.send("/ddfs/tag/t:ok/" + p, method, b'"v"')
        raw.send("/ddfs/" + p, "PUT", SECRET[:4], host=NODE, port=put_port)
        raw.send("/ddfs/" + p + "$6a4-1-2", "PUT", SECRET[:4], host=NODE, port=put_port)
        raw.send("/ddfs/" + p, "PUT", SECRET[:4], port=put_port)

    # Symlinked job data on the nodes: purge must not delete through it.
    raw.post_json("purge_job", SYM_DATA_JOB)
    app = m.server.runner.app
    poll_for(lambda: not app[ctrl.BACKGROUND], 30, "background purges to finish")

    after = snapshot(str(tmp_path), data_root)
    assert after == before  # nothing outside the data root was written, changed or deleted
    for what, _status, body in raw.answers:
        assert data_root.encode() not in body, what  # no answer shows a server path
    # The refusals are 4xx (checked in ``send``); the master still serves.
    assert raw.send("/disco/ctrl/joblist")[0] == 200
    assert len(raw.answers) > 3000


def test_refusals_are_400_with_a_reason_and_change_nothing(master, tmp_path):
    """Names that cannot be jobs: 400 with a short JSON reason (or the 0.5 answer)."""
    make_sentinels(tmp_path)
    raw = Raw(master, tmp_path)
    victim = "../" * 4 + "victim"
    for op in ("kill_job", "clean_job", "purge_job"):
        status, body = raw.post_json(op, victim)
        assert status == 400 and json.loads(body).startswith("invalid job name: ")
    for op in ("jobinfo", "rawevents", "parameters", "jobevents"):
        status, body = raw.send("/disco/ctrl/%s?name=%s" % (op, urllib.parse.quote(victim)))
        assert status == 400 and json.loads(body).startswith("invalid job name: ")
    # get_results answers every name; one that cannot be a job is an unknown job (2.4)
    assert raw.post_json("get_results", [0, [victim]]) == (
        200,
        json.dumps([[victim, ["unknown job", []]]], separators=(",", ":")).encode(),
    )
    status, body = raw.post_json("blacklist", "../x")
    assert status == 400 and json.loads(body).startswith("invalid node name: ")
    status, body = raw.post_json("save_config_table", [["../x", "1"]])
    assert status == 400 and "invalid node name" in json.loads(body)
    table = json.loads(raw.send("/disco/ctrl/load_config_table")[1])
    assert [row[0] for row in table] == ["localhost"]  # the refused table changed nothing
    # An unknown but valid name: the 0.5 answers (2.4, 2.3)
    assert raw.post_json("clean_job", "Gone@1:2:3") == (200, b'""')
    assert raw.send("/disco/ctrl/rawevents?name=Gone@1:2:3") == (404, b"Not found.")
    stage = urllib.parse.quote("x\x01")
    status, body = raw.send("/disco/ctrl/get_stageresults?name=Gone@1:2:3&stage=" + stage)
    assert status == 400 and json.loads(body).startswith("invalid stage name: ")
    assert (tmp_path / "victim" / "secret").read_bytes().startswith(SECRET)
