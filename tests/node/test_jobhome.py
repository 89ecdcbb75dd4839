"""Job home preparation on a node (master-api.md 6.5, 6.6, 9.2)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import stat
from collections.abc import Iterator

import aiohttp
import pytest

from disco.backends.base import TaskDone
from disco.embedded import EmbeddedMaster
from disco.node.jobhome import (
    JobHomeError,
    ensure_jobhome,
    hash_dir,
    jobhome_path,
    read_pack,
)
from disco.node.runner import run_worker
from tests.node.helpers import (
    JOBNAME,
    PRELUDE,
    Channel,
    PackMaster,
    make_jobpack,
    make_spec,
)

pytestmark = pytest.mark.timeout(30)

WORKER = PRELUDE + 'hello\nsend MSG "\\"$(cat lib/data.txt)\\""; recv\nsend DONE \'""\'\nsleep 30\n'


def test_paths():
    assert hash_dir(JOBNAME) == "82"
    assert jobhome_path("/d", "node1", JOBNAME) == "/d/node1/82/" + JOBNAME


def test_extracts_once_and_runs_the_worker(tmp_path, packs):
    spec = packs.spec(tmp_path)
    pack = make_jobpack(packs.path(), {"bin/worker": WORKER, "lib/data.txt": "from the job home"})
    home = asyncio.run(ensure_jobhome(spec))
    assert home == os.path.join(str(tmp_path / "data"), "node1", "82", JOBNAME)
    with open(os.path.join(home, "jobfile"), "rb") as f:
        assert f.read() == pack
    assert os.path.exists(os.path.join(home, ".jobhome"))
    assert stat.S_IMODE(os.stat(os.path.join(home, "bin/worker")).st_mode) == 0o755
    assert sorted(os.listdir(home)) == [".jobhome", "bin", "jobfile", "lib"]

    # a second call finds the marker and leaves the directory alone
    with open(os.path.join(home, "lib/data.txt"), "w") as f:
        f.write("changed by a task")
    assert asyncio.run(ensure_jobhome(spec)) == home
    with open(os.path.join(home, "lib/data.txt")) as f:
        assert f.read() == "changed by a task"

    channel = Channel()
    result = asyncio.run(run_worker(spec, channel, home))
    assert isinstance(result, TaskDone), result
    assert channel.events[0] == "MSG: [map:3] changed by a task"


def test_concurrent_first_tasks_share_one_extraction(tmp_path, packs):
    spec = packs.spec(tmp_path)
    make_jobpack(packs.path(), {"bin/worker": WORKER})

    async def main():
        return await asyncio.gather(*(ensure_jobhome(spec) for _ in range(5)))

    homes = asyncio.run(main())
    assert len(set(homes)) == 1
    assert [n for n in os.listdir(homes[0]) if n.startswith("jobfile@")] == []


def test_hosts_get_separate_homes(tmp_path, packs):
    make_jobpack(packs.path(), {"bin/worker": WORKER})
    a = asyncio.run(ensure_jobhome(packs.spec(tmp_path, host="a")))
    b = asyncio.run(ensure_jobhome(packs.spec(tmp_path, host="b")))
    assert a != b and os.path.isfile(os.path.join(b, "bin/worker"))


@pytest.mark.parametrize("member", ["../evil", "/abs/evil", "a/../../evil", ".disco/x"])
def test_unsafe_members_are_refused(tmp_path, packs, member):
    spec = packs.spec(tmp_path)
    make_jobpack(packs.path(), {"bin/worker": WORKER, member: "x"})
    with pytest.raises(JobHomeError) as info:
        asyncio.run(ensure_jobhome(spec))
    assert str(info.value).startswith("Jobpack extraction failed: ")
    assert member in str(info.value)
    home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    assert not os.path.exists(os.path.join(home, ".jobhome"))
    assert not os.path.exists(os.path.join(os.path.dirname(home), "evil"))
    assert not os.path.exists("/abs/evil")


def test_missing_worker_and_bad_packs(tmp_path, packs):
    spec = packs.spec(tmp_path)
    make_jobpack(packs.path(), {"lib/x": "x"})
    with pytest.raises(JobHomeError, match="^Jobpack extraction failed: worker 'bin/worker'"):
        asyncio.run(ensure_jobhome(spec))

    with open(packs.path(), "wb") as f:
        f.write(b"\0" * 200)
    with pytest.raises(JobHomeError, match="invalid header"):
        asyncio.run(ensure_jobhome(spec))

    pack = bytearray(make_jobpack(packs.path(), {"bin/worker": WORKER}))
    home_off = int.from_bytes(pack[12:16], "big")
    pack[home_off : home_off + 4] = b"JUNK"  # not a zip any more
    with open(packs.path(), "wb") as f:
        f.write(pack)
    with pytest.raises(JobHomeError, match="^Jobpack extraction failed: "):
        asyncio.run(ensure_jobhome(spec))

    os.remove(packs.path())  # the master does not have it (purged meanwhile)
    with pytest.raises(
        JobHomeError, match="could not fetch the job pack from .*: HTTP 404"
    ) as info:
        asyncio.run(ensure_jobhome(spec))
    assert not info.value.permanent  # retried: the pack is not at fault


def test_read_pack_and_bad_job_names(tmp_path):
    pack = make_jobpack(str(tmp_path / "p"), {"w": "x"}, worker="w")
    worker, zipbytes = read_pack(pack)
    assert worker == "w" and zipbytes.startswith(b"PK")
    with pytest.raises(JobHomeError, match="invalid job name"):
        asyncio.run(ensure_jobhome(make_spec(tmp_path, jobname="../x")))


def _counting_session() -> tuple[aiohttp.ClientSession, list[str]]:
    """A client session that records the URL of every request it starts."""
    fetched: list[str] = []

    async def started(_session, _ctx, params) -> None:
        fetched.append(str(params.url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(started)
    return aiohttp.ClientSession(trace_configs=[trace]), fetched


def test_the_pack_is_fetched_once_per_job_per_node(tmp_path, packs):
    """6.6 by URL: concurrent first tasks share one download; a ready job home never
    fetches again (even once the master has no pack any more); another node fetches
    its own copy."""
    pack = make_jobpack(packs.path(), {"bin/worker": WORKER})
    spec = packs.spec(tmp_path)

    async def main():
        session, fetched = _counting_session()
        async with session:
            homes = await asyncio.gather(*(ensure_jobhome(spec, session) for _ in range(5)))
            assert fetched == [spec.jobpack_url]
            os.remove(packs.path())
            assert await ensure_jobhome(spec, session) == homes[0]
            assert fetched == [spec.jobpack_url]
            make_jobpack(packs.path(), {"bin/worker": WORKER})
            other = await ensure_jobhome(dataclasses.replace(spec, host="node2"), session)
            assert fetched == [spec.jobpack_url] * 2
        return homes[0], other

    home, other = asyncio.run(main())
    for directory in (home, other):
        with open(os.path.join(directory, "jobfile"), "rb") as f:
            assert f.read() == pack
        assert [n for n in os.listdir(directory) if n.startswith("jobfile@")] == []


@pytest.fixture
def secured_packs(tmp_path) -> Iterator[PackMaster]:
    settings = {"DISCO_AUTH_TOKEN": "s3cret-token", "DISCO_AUTH_READS": "1"}
    root = tmp_path / "secured"
    with EmbeddedMaster(root=root, export_env=False, settings=settings) as master:
        yield PackMaster(master)


def test_the_fetch_carries_the_cluster_token(tmp_path, secured_packs):
    """With reads protected, the node's request carries DISCO_AUTH_TOKEN (disco.auth)."""
    make_jobpack(secured_packs.path(), {"bin/worker": WORKER})
    anonymous = secured_packs.spec(tmp_path)
    with pytest.raises(JobHomeError, match="HTTP 401") as info:
        asyncio.run(ensure_jobhome(anonymous))
    assert not info.value.permanent
    home = asyncio.run(ensure_jobhome(dataclasses.replace(anonymous, auth_token="s3cret-token")))
    assert os.path.isfile(os.path.join(home, ".jobhome"))


def test_an_unreachable_master_fails_the_attempt_recoverably(tmp_path):
    spec = make_spec(tmp_path)  # its URL names a port nothing listens on
    with pytest.raises(JobHomeError, match="could not fetch the job pack") as info:
        asyncio.run(ensure_jobhome(spec))
    assert not info.value.permanent
    home = jobhome_path(spec.disco_data, spec.host, spec.jobname)
    assert not os.path.exists(os.path.join(home, "jobfile"))


def test_a_ready_home_is_checked_once_and_prepared_again_after_a_purge(tmp_path):
    """Many tasks: once a job home is ready, later tasks look only at its marker and
    never name the master's pack file; a purged home goes through everything again."""
    from disco.node.jobhome import ready_jobhome, remove_job_data

    pack_file = str(tmp_path / "master" / "jobfile")
    os.makedirs(os.path.dirname(pack_file))
    make_jobpack(pack_file, {"bin/worker": WORKER, "lib/data.txt": "v1"})
    spec = make_spec(tmp_path)
    named: list[str] = []

    def local() -> str:
        named.append(pack_file)
        return pack_file

    async def main() -> None:
        assert ready_jobhome(spec) is None
        home = await ensure_jobhome(spec, local_jobpack=local)
        assert named == [pack_file]
        assert ready_jobhome(spec) == home
        for _ in range(3):
            assert await ensure_jobhome(spec, local_jobpack=local) == home
        assert named == [pack_file]  # not named again for the later tasks
        await remove_job_data(spec.disco_data, spec.host, spec.jobname)  # purge
        assert ready_jobhome(spec) is None
        make_jobpack(pack_file, {"bin/worker": WORKER, "lib/data.txt": "v2"})
        assert await ensure_jobhome(spec, local_jobpack=local) == home
        assert named == [pack_file] * 2
        with open(os.path.join(home, "lib/data.txt")) as f:
            assert f.read() == "v2"

    asyncio.run(main())
