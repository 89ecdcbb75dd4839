"""Fuzzing the JSON control endpoints of a real master (issue 8.5).

Random JSON bodies (deep, huge numbers, lone surrogates, odd names...) to every POST
``/disco/ctrl/<op>`` and the JSON endpoints of DDFS, random query values to the GET ops:
every answer is below 500 and short.  ``REQUESTS`` counts what was sent (the figure in
docs/failures.md comes from ``pytest -s`` of this file).
"""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from disco.embedded import EmbeddedMaster
from disco.master.api import ctrl
from disco.master.store import ConfigError, expand_table
from tests.fuzzing import FUZZ, json_values
from tests.rawhttp import send_raw

REQUESTS = {"sent": 0, "5xx": 0}


@pytest.fixture(scope="module")
def m(tmp_path_factory):
    with EmbeddedMaster(root=tmp_path_factory.mktemp("fz") / "disco", export_env=False) as master:
        yield master
    print("\nfuzzed %(sent)d requests, %(5xx)d 5xx" % REQUESTS)


def send(m, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    status, data = send_raw(m.port, method, path, body)
    REQUESTS["sent"] += 1
    REQUESTS["5xx"] += status >= 500
    assert status < 500, (method, path, (body or b"")[:200], status, data[:200])
    return status, data


def encoded(value) -> bytes:
    try:
        return json.dumps(value).encode()  # lone surrogates become "\ud800" escapes
    except (ValueError, RecursionError):
        return b"null"


def applies(table) -> bool:
    """Would ``save_config_table`` accept it?  Such tables are not sent: they would
    start node servers on whatever host names Hypothesis invents (loopback only here)."""
    try:
        rows = [[str(a), str(b)] for a, b in table]
        expand_table(rows)
    except (ConfigError, TypeError, ValueError):
        return False
    return True


POST_OPS = sorted(set(ctrl.POST_OPS) - {"get_results"})


@FUZZ
@given(st.sampled_from(POST_OPS), json_values)
def test_post_ops_random_json(m, op, value):
    if op == "save_config_table" and isinstance(value, list) and applies(value):
        return
    if op == "save_settings" and isinstance(value, dict):
        value.pop("accept_new_jobs", None)  # keep the master accepting jobs
    status, data = send(m, "POST", "/disco/ctrl/" + op, encoded(value))
    assert len(data) < 2000


@FUZZ
@given(json_values, st.lists(st.text(max_size=30) | json_values, max_size=5))
def test_get_results_random(m, timeout, names):
    send(m, "POST", "/disco/ctrl/get_results", encoded([timeout if timeout != 0 else 0, names]))
    send(m, "POST", "/disco/ctrl/get_results", encoded([0, names]))


@FUZZ
@given(st.binary(max_size=200))
def test_post_ops_random_bytes(m, body):
    for op in ("kill_job", "save_config_table", "get_results"):
        send(m, "POST", "/disco/ctrl/" + op, body)


@FUZZ
@given(
    st.sampled_from(
        [
            "/ddfs/tag/t:fz",
            "/ddfs/tag/t:fz/attr",
            "/ddfs/tag/t:fz/ddfs:urls",
            "/ddfs/tag/t:fz/ddfs:read-token",
            "/ddfs/ctrl/hosted_tags",
        ]
    ),
    st.sampled_from(["PUT", "POST"]),
    json_values,
)
def test_ddfs_json_endpoints(m, path, method, value):
    send(m, method, path, encoded(value))


@FUZZ
@given(
    st.sampled_from(
        ["jobinfo", "jobevents", "rawevents", "parameters", "get_stageresults", "joblist"]
    ),
    st.dictionaries(st.sampled_from(["name", "num", "filter", "stage"]), st.text(max_size=40)),
)
def test_get_ops_random_query(m, op, query):
    q = urllib.parse.urlencode(query, errors="surrogatepass")
    send(m, "GET", "/disco/ctrl/%s?%s" % (op, q))
