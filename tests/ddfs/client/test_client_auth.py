"""Read and write tokens through the client (ddfs.md 1.10, 8.1 "Authorization")."""

from __future__ import annotations

import pytest

from disco.ddfs import DDFS
from disco.error import CommError
from disco.settings import DiscoSettings

TAG = "disco:test:authrd"


def denied(call) -> None:
    with pytest.raises(CommError) as e:
        call()
    assert e.value.code == 401 and "Incorrect or missing token." in e.value.msg


def test_empty_token_is_a_token(ddfs) -> None:
    ddfs.setattr(TAG, "a", "v", token="")  # creates the tag with both tokens ""
    assert ddfs.getattr(TAG, "ddfs:read-token", token="") == ""
    assert ddfs.getattr(TAG, "a", token="") == "v"
    ddfs.setattr(TAG, "b", "w", token="")
    assert ddfs.attrs(TAG, token="") == {"a": "v", "b": "w"}
    denied(lambda: ddfs.getattr(TAG, "a"))
    denied(lambda: ddfs.setattr(TAG, "a", "x"))


def test_write_token_only(ddfs) -> None:
    ddfs.setattr(TAG, "a", "v")
    ddfs.setattr(TAG, "ddfs:write-token", "w")
    assert ddfs.getattr(TAG, "a") == "v" and ddfs.getattr(TAG, "a", token="bad") == "v"
    denied(lambda: ddfs.setattr(TAG, "a", "x"))
    denied(lambda: ddfs.setattr(TAG, "a", "x", token="bad"))
    denied(lambda: ddfs.delete(TAG))
    denied(lambda: ddfs.tag(TAG, [["x"]]))
    ddfs.setattr(TAG, "a", "x", token="w")
    assert ddfs.getattr(TAG, "a") == "x"
    ddfs.setattr(TAG, "ddfs:read-token", "r", token="w")
    denied(lambda: ddfs.getattr(TAG, "a"))
    assert ddfs.getattr(TAG, "a", token="r") == "x"
    assert ddfs.exists(TAG)  # a 401 means the tag is there


def test_read_token_only(ddfs) -> None:
    ddfs.setattr(TAG, "a", "v")
    ddfs.setattr(TAG, "ddfs:read-token", "r")
    denied(lambda: ddfs.getattr(TAG, "a"))
    denied(lambda: ddfs.get(TAG, token="bad"))
    assert ddfs.getattr(TAG, "a", token="r") == "v"
    ddfs.setattr(TAG, "b", "v2")  # writes need no read token
    ddfs.delattr(TAG, "b", token="random")
    ddfs.setattr(TAG, "ddfs:read-token", "r2")
    assert ddfs.attrs(TAG, token="r2") == {"a": "v"}
    # the token may also travel in the tag URL
    assert ddfs.getattr("tag://r2@/" + TAG, "a") == "v"


def test_tokens_from_settings(cluster) -> None:
    writer = DDFS(cluster.url, settings=DiscoSettings(DDFS_WRITE_TOKEN="s", DDFS_READ_TOKEN="s"))
    writer.push(TAG, [(b"x", "x")])  # creating with a token sets both tokens
    plain = DDFS(cluster.url)
    denied(lambda: plain.get(TAG))
    assert writer.getattr(TAG, "ddfs:write-token") == "s"
    assert len(writer.urls(TAG)) == 1


def test_atomic_creation_with_a_token(ddfs) -> None:
    ddfs.push(TAG, [(b"x", "x")], update=True, delayed=True, token="secret1")
    denied(lambda: ddfs.get(TAG))
    assert ddfs.getattr(TAG, "ddfs:write-token", token="secret1") == "secret1"
    ddfs.put(TAG + "2", [], token="secret2")
    denied(lambda: ddfs.get(TAG + "2"))
    assert ddfs.getattr(TAG + "2", "ddfs:read-token", token="secret2") == "secret2"
    ddfs.put(TAG + "3", [])
    assert ddfs.getattr(TAG + "3", "ddfs:write-token") is None


def test_chtok_round_trip_and_delete_with_token(ddfs) -> None:
    ddfs.tag(TAG, [["x"]], token="t")
    denied(lambda: ddfs.delete(TAG))
    assert ddfs.delattr(TAG, "ddfs:read-token", token="t") == "deleted"
    assert ddfs.urls(TAG) == [["x"]]
    assert ddfs.delete(TAG, token="t") == "deleted" and not ddfs.exists(TAG)


def test_read_protected_tag_as_input(ddfs, tmp_path) -> None:
    """ddfs.md 8.6: ``tag://user:TOKEN@/TAG`` inputs read a read-protected tag."""
    from disco.core import result_iterator

    path = tmp_path / "lines"
    path.write_bytes(b"one\ntwo\n")
    ddfs.chunk(TAG, [str(path)], token="r")
    with pytest.raises(CommError) as e:
        list(result_iterator(["tag://" + TAG]))
    assert e.value.code == 401
    assert list(result_iterator(["tag://user:r@/" + TAG], ddfs=ddfs.master)) == [b"one\n", b"two\n"]
    assert list(result_iterator(["tag://r@/" + TAG])) == [b"one\n", b"two\n"]
