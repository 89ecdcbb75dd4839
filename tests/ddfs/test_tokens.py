"""Read and write tokens (ddfs.md 1.10, 8.1 "Authorization") over plain HTTP."""

from __future__ import annotations

import base64

import pytest

from disco.ddfs.names import Timestamp
from disco.ddfs.tagdoc import INTERNAL, TagDoc, can_write, read_privilege
from tests.ddfs.conftest import HTTP

DENIED = (401, "Incorrect or missing token.")


def status(http: HTTP, path: str, method: str = "GET", body: object = None, **kw) -> tuple:
    answer = http.request(path, method, body, **kw)
    return answer.status, answer.text if answer.status >= 400 else None


def test_empty_token_is_a_real_token(ddfs: HTTP) -> None:
    ddfs.tag("t:empty", [["a"]], token="")
    assert status(ddfs, "/ddfs/tag/t:empty") == DENIED
    assert ddfs.get("t:empty", token="")["urls"] == [["a"]]
    ddfs.ok("/ddfs/tag/t:empty/a", "PUT", "v", token="")
    assert ddfs.ok("/ddfs/tag/t:empty/ddfs:write-token", token="") == ""


def test_write_token_only(ddfs: HTTP) -> None:
    ddfs.tag("t:w", [])
    ddfs.ok("/ddfs/tag/t:w/ddfs:write-token", "PUT", "w1")
    assert ddfs.get("t:w")["urls"] == []  # reads need no token
    assert ddfs.get("t:w", token="wrong")["urls"] == []
    assert status(ddfs, "/ddfs/tag/t:w/a", "PUT", "v") == DENIED
    assert status(ddfs, "/ddfs/tag/t:w/a", "PUT", "v", token="wrong") == DENIED
    assert status(ddfs, "/ddfs/tag/t:w", "POST", [["x"]]) == DENIED
    assert status(ddfs, "/ddfs/tag/t:w", "PUT", [["x"]]) == DENIED
    assert status(ddfs, "/ddfs/tag/t:w", "DELETE") == DENIED
    assert status(ddfs, "/ddfs/tag/t:w/a", "DELETE") == DENIED
    ddfs.ok("/ddfs/tag/t:w/a", "PUT", "v", token="w1")
    assert ddfs.ok("/ddfs/tag/t:w/a") == "v"
    # [quirk] the write token of a tag with only a write token can never be read
    assert status(ddfs, "/ddfs/tag/t:w/ddfs:write-token", token="w1") == DENIED
    assert ddfs.ok("/ddfs/tag/t:w/ddfs:read-token") is None
    ddfs.ok("/ddfs/tag/t:w/ddfs:read-token", "PUT", "r1", token="w1")
    assert status(ddfs, "/ddfs/tag/t:w") == DENIED
    assert ddfs.get("t:w", token="r1")["user-data"] == {"a": "v"}
    assert ddfs.ok("/ddfs/tag/t:w/ddfs:write-token", token="w1") == "w1"  # holders read it
    assert status(ddfs, "/ddfs/tag/t:w/ddfs:write-token", token="r1") == DENIED
    assert ddfs.ok("/ddfs/tag/t:w", "DELETE", token="w1") == "deleted"


def test_read_token_only(ddfs: HTTP) -> None:
    ddfs.tag("t:r", [])
    ddfs.ok("/ddfs/tag/t:r/ddfs:read-token", "PUT", "r1")
    assert status(ddfs, "/ddfs/tag/t:r") == DENIED
    assert status(ddfs, "/ddfs/tag/t:r", token="wrong") == DENIED
    assert status(ddfs, "/ddfs/tag/t:r/ddfs:urls") == DENIED
    assert ddfs.get("t:r", token="r1")["urls"] == []
    # writes need no token while there is no write token
    ddfs.ok("/ddfs/tag/t:r/a", "PUT", "v")
    ddfs.ok("/ddfs/tag/t:r/a", "DELETE", token="random")
    ddfs.ok("/ddfs/tag/t:r/ddfs:read-token", "PUT", "r2")
    assert ddfs.get("t:r", token="r2")["user-data"] == {}
    assert ddfs.ok("/ddfs/tag/t:r/ddfs:write-token", token="r2") is None
    ddfs.ok("/ddfs/tag/t:r/ddfs:read-token", "DELETE")
    assert ddfs.get("t:r")["urls"] == []


def test_creating_request_token_becomes_both_tokens(ddfs: HTTP) -> None:
    ddfs.tag("t:c1", [["a"]], "?update=1&delayed=1", token="secret1")
    assert status(ddfs, "/ddfs/tag/t:c1") == DENIED
    assert ddfs.ok("/ddfs/tag/t:c1/ddfs:write-token", token="secret1") == "secret1"
    ddfs.ok("/ddfs/tag/t:c2", "PUT", [], token="secret2")
    assert ddfs.ok("/ddfs/tag/t:c2/ddfs:read-token", token="secret2") == "secret2"
    ddfs.ok("/ddfs/tag/t:c3/attr", "PUT", "v", token="secret3")
    assert status(ddfs, "/ddfs/tag/t:c3") == DENIED
    ddfs.ok("/ddfs/tag/t:c4", "PUT", [])
    assert ddfs.ok("/ddfs/tag/t:c4/ddfs:write-token") is None
    # a deleted tag is re-created with the new request's token only
    ddfs.ok("/ddfs/tag/t:c2", "DELETE", token="secret2")
    ddfs.tag("t:c2", [])
    assert ddfs.ok("/ddfs/tag/t:c2/ddfs:read-token") is None


@pytest.mark.parametrize(
    "header",
    [
        "Bearer abc",
        "Basic " + base64.b64encode(b"user:secret").decode(),
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"nocolon").decode(),
    ],
)
def test_other_authorization_forms_are_no_token(ddfs: HTTP, header: str) -> None:
    ddfs.tag("t:auth", [], token="secret")
    answer = ddfs.request("/ddfs/tag/t:auth", headers={"Authorization": header})
    assert (answer.status, answer.text) == DENIED


# -- the table of 1.10, unit level ------------------------------------------------------
@pytest.mark.parametrize(
    "read, write, token, expected",
    [
        (None, None, "x", "write"),
        (None, None, None, "write"),
        (None, "W", "W", "read"),  # [quirk]
        (None, "W", None, "read"),
        ("R", None, "R", "write"),
        ("R", None, "x", "denied"),
        ("R", None, None, "denied"),
        ("R", "R", "R", "write"),
        ("R", "R", "x", "denied"),
        ("R", "W", "R", "read"),
        ("R", "W", "W", "write"),
        ("R", "W", "x", "denied"),
        ("R", "W", INTERNAL, "write"),
    ],
)
def test_read_table(read, write, token, expected) -> None:
    doc = TagDoc("t", Timestamp(1, 2, 3), "", read, write)
    assert read_privilege(doc, token) == expected


def test_write_table() -> None:
    def doc(w):
        return TagDoc("t", Timestamp(1, 2, 3), "", "R", w)

    assert can_write(doc(None), None) and can_write(doc(None), "x")
    assert can_write(doc("W"), "W") and not can_write(doc("W"), "R")
    assert not can_write(doc("W"), None) and can_write(doc("W"), INTERNAL)
    assert can_write(None, None)
