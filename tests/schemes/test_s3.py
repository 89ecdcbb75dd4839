"""``s3://`` inputs (library.md 13) read by real jobs from moto's S3 server on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from disco.core import result_iterator
from disco.error import JobError
from disco.job import Job
from disco.schemes import scheme_s3
from tests.schemes.servers import moto_s3

pytestmark = pytest.mark.timeout(90)

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: Any) -> Any:
    with moto_s3(str(tmp_path_factory.mktemp("moto"))) as endpoint:
        params = dict(CREDENTIALS, aws_endpoint_url=endpoint, aws_region="us-east-1")
        client = scheme_s3.client(params)
        client.create_bucket(Bucket="texts")
        client.put_object(Bucket="texts", Key="a.txt", Body=b"one two\nthree\n")
        client.put_object(Bucket="texts", Key="dir/b.txt", Body=b"four\n" * 3000)
        yield params


def line_map(line: bytes, params: Any) -> Any:
    yield line.strip(), 1


def test_s3_inputs_in_a_job(master: Any, s3: dict[str, str]) -> None:
    job = Job(master=master.url).run(
        input=["s3://texts/a.txt", "s3://texts/dir/b.txt", "s3://texts/"],
        map=line_map,
        params=s3,
    )
    got = sorted(result_iterator(job.wait()))
    assert got == sorted([(b"one two", 1), (b"three", 1)] + [(b"four", 1)] * 3000)


def test_signed_url_size_and_empty_key(s3: dict[str, str]) -> None:
    url, size = scheme_s3.signed_url("s3://texts/a.txt", s3)
    assert size == len(b"one two\nthree\n")
    assert url.startswith(s3["aws_endpoint_url"]) and "Signature" in url
    stream, size, _ = scheme_s3.input_stream(None, None, "s3://texts/", s3)
    assert (stream.read(), size) == (b"", 0)


def test_missing_object_fails_the_job_with_its_url(master: Any, s3: dict[str, str]) -> None:
    job = Job(master=master.url).run(input=["s3://texts/nope.txt"], map=line_map, params=s3)
    with pytest.raises(JobError):
        job.wait()
    assert "Could not open s3://texts/nope.txt" in master.disco.rawevents(job.name)
