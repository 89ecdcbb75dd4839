"""``s3://bucket/key``: an object of Amazon S3 or an S3-compatible store (library.md 13).

The node asks S3 (through ``boto3``, the ``s3`` extra) for the object's size and a
presigned GET URL valid for 24 hours, then reads that URL like any ``http://`` input
(ranged GETs, retries).  An empty key gives an empty input.
A 4xx answer (no such object or bucket, credentials refused) fails the task for good;
other failures are data errors, so the master retries the task.

Credentials come from the job's ``params`` (``aws_access_key_id``,
``aws_secret_access_key``, as in 0.5), else from boto3's usual chain (environment,
``~/.aws``).  Two extensions pick the service: ``aws_endpoint_url`` (an S3-compatible
server; boto3 also reads ``AWS_ENDPOINT_URL``) and ``aws_region``.
"""

from __future__ import annotations

import io
from typing import Any

from disco import comm
from disco.error import DataError, DiscoError
from disco.schemes._optional import param, require
from disco.util import schemesplit

SIGNED_URL_SECONDS = 24 * 3600


def split(url: str) -> tuple[str, str]:
    """``(bucket, key)`` of ``s3://bucket/key``."""
    bucket, _, key = schemesplit(url)[1].partition("/")
    if not bucket:
        raise DiscoError("No bucket in S3 URL %r (expected s3://bucket/key)" % url)
    return bucket, key


def client(params: Any = None) -> Any:
    """A boto3 S3 client configured from ``params`` (see the module docstring)."""
    boto3 = require("boto3", "s3", "s3")
    options = {
        "aws_access_key_id": param(params, "aws_access_key_id"),
        "aws_secret_access_key": param(params, "aws_secret_access_key"),
        "endpoint_url": param(params, "aws_endpoint_url"),
        "region_name": param(params, "aws_region"),
    }
    return boto3.client("s3", **{k: v for k, v in options.items() if v})


def signed_url(url: str, params: Any = None) -> tuple[str, int]:
    """``(presigned GET URL, object size)`` of ``s3://bucket/key``."""
    botocore = require("botocore.exceptions", "s3", "s3")
    bucket, key = split(url)
    s3 = client(params)
    try:
        size = int(s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        signed = s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=SIGNED_URL_SECONDS
        )
    except botocore.ClientError as e:
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if 400 <= status < 500:
            # A missing object or bucket, refused credentials: retrying cannot help.
            raise DiscoError("Could not open %s: %s" % (url, e))
        raise DataError("Could not open %s: %s" % (url, e), url, status or None)
    except botocore.BotoCoreError as e:
        # The service is unreachable or answered badly: the task is retried (17.6).
        raise DataError("Could not open %s: %s" % (url, e), url)
    return signed, size


def input_stream(fd: Any, size: Any, url: str, params: Any) -> tuple[Any, int, str]:
    _bucket, key = split(url)
    if not key:
        return io.BytesIO(b""), 0, url
    signed, size = signed_url(url, params)
    return comm.open_url(signed), size, signed
