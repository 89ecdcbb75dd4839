"""Real jobs keep working when ``DISCO_AUTH_TOKEN`` is set: workers get the token, so
``save_results``, ``tag://`` inputs and OOB ``put``/``get`` pass the check, with reads
open and with ``DISCO_AUTH_READS``."""

from __future__ import annotations

from typing import Any

import pytest

from disco.core import Job, result_iterator
from disco.ddfs import DDFS
from disco.embedded import EmbeddedMaster
from disco.error import CommError
from disco.settings import DiscoSettings
from tests.conftest import _assert_no_leaked_workers, child_pids
from tests.security.helpers import TOKEN, WRONG

pytestmark = pytest.mark.timeout(180)


def word_map(line, params):
    line = line.decode() if isinstance(line, bytes) else line  # blobs give bytes
    put("seen-%s" % line.split()[0], line.strip().encode())  # noqa: F821 - OOB put on the node
    for word in line.split():
        yield word, 1


def sum_reduce(iter, params):
    from disco.util import kvgroup

    for word, counts in kvgroup(sorted(iter)):
        yield word, sum(counts)
    yield "oob", get("seen-a")  # noqa: F821 - OOB get on the node (a DDFS read)


def token_map(line, params):
    import os

    yield "has-token", os.environ.get("DISCO_AUTH_TOKEN") == line


@pytest.fixture(params=["", "1"], ids=["reads-open", "reads-protected"])
def secured(request, tmp_path) -> Any:
    before = child_pids()
    settings = {
        "DISCO_AUTH_TOKEN": TOKEN,
        "DISCO_AUTH_READS": request.param,
        "DDFS_DELAYED_FLUSH": "0.05",
    }
    nodes = [("localhost", 2), ("127.0.0.2", 2)]
    with EmbeddedMaster(root=tmp_path / "disco", nodes=nodes, settings=settings) as m:
        yield m  # DISCO_AUTH_TOKEN is exported to this process (the client side)
    _assert_no_leaked_workers(before)


def test_word_count_with_ddfs_inputs_oob_and_saved_results(secured) -> None:
    ddfs = DDFS(secured.url)
    ddfs.push("data:words", [(b"a b a\n", "one"), (b"b c a\n", "two")])
    job = Job(master=secured.url).run(
        input=["tag://data:words"], map=word_map, reduce=sum_reduce, save_results=True
    )
    results = job.wait(poll_interval=0.1)
    assert results == ["tag://disco:results:%s" % job.name]  # saved by the node runtime
    got = dict(result_iterator(results))
    assert got == {"a": 3, "b": 2, "c": 1, "oob": b"a b a"}
    assert sorted(job.oob_list()) == ["seen-a", "seen-b"]
    assert ddfs.get("disco:results:%s" % job.name)["urls"]


def test_workers_get_the_token(secured) -> None:
    job = Job(master=secured.url).run(input=["raw://" + TOKEN], map=token_map)
    assert list(result_iterator(job.wait(poll_interval=0.1))) == [("has-token", True)]


def test_a_client_with_a_wrong_token_cannot_submit(secured) -> None:
    before = secured.disco.joblist()
    wrong = DiscoSettings(DISCO_AUTH_TOKEN=WRONG)
    with pytest.raises(CommError) as info:
        Job(master=secured.url, settings=wrong).run(input=["raw://x"], map=token_map)
    assert info.value.code == 401 and "X-Disco-Auth-Token" in str(info.value)
    assert secured.disco.joblist() == before
