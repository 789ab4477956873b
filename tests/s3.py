"""A real S3-compatible server for tests: moto's server mode on 127.0.0.1, started once.

`s3` gives each test a fresh bucket on that server, a boto3 client for it, and points
fsspec/s3fs (in this process) and the AWS_* environment (for worker subprocesses, which
inherit os.environ) at it; everything is put back afterwards. No client is mocked: the
code under test talks HTTP to the server like it would to MinIO or AWS.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

S3_KEY = "q16-test-key"
S3_SECRET = "q16-test-secret"
S3_REGION = "us-east-1"

# What the s3 fixture sets in os.environ (and restores): boto3, s3fs and subprocesses read it.
_ENV_NAMES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "FSSPEC_S3_ENDPOINT_URL",
    "FSSPEC_S3_KEY",
    "FSSPEC_S3_SECRET",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Bucket:
    """One test's bucket on the moto server."""

    endpoint_url: str
    bucket: str
    client: Any  # a boto3 S3 client
    key: str = S3_KEY
    secret: str = S3_SECRET
    region: str = S3_REGION

    def env(self) -> dict[str, str]:
        """The environment a subprocess (a Celery worker) needs to reach this bucket."""
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "FSSPEC_S3_ENDPOINT_URL": self.endpoint_url,
            "FSSPEC_S3_KEY": self.key,
            "FSSPEC_S3_SECRET": self.secret,
        }

    def keys(self, prefix: str = "") -> list[str]:
        """Every object key in the bucket under `prefix`, sorted."""
        found: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(found)

    def read(self, key: str) -> bytes:
        return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def put(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1 and a free port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_server: str) -> Iterator[S3Bucket]:
    """A fresh bucket on the moto server; fsspec and the AWS_* environment point at it."""
    import boto3
    import fsspec.config

    saved_env = {name: os.environ.get(name) for name in _ENV_NAMES}
    saved_fsspec = fsspec.config.conf.get("s3")
    bucket = S3Bucket(
        endpoint_url=s3_server,
        bucket=f"q16-test-{uuid.uuid4().hex[:12]}",
        client=boto3.client(
            "s3",
            endpoint_url=s3_server,
            aws_access_key_id=S3_KEY,
            aws_secret_access_key=S3_SECRET,
            region_name=S3_REGION,
        ),
    )
    bucket.client.create_bucket(Bucket=bucket.bucket)
    os.environ.update(bucket.env())
    fsspec.config.conf["s3"] = {
        "endpoint_url": s3_server,
        "key": S3_KEY,
        "secret": S3_SECRET,
    }
    _clear_s3fs_cache()
    try:
        yield bucket
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_fsspec is None:
            fsspec.config.conf.pop("s3", None)
        else:
            fsspec.config.conf["s3"] = saved_fsspec
        _clear_s3fs_cache()
        _delete_bucket(bucket)


def _clear_s3fs_cache() -> None:
    """s3fs caches filesystem instances by their arguments: drop them between tests."""
    try:
        from s3fs import S3FileSystem
    except ImportError:  # pragma: no cover - s3fs is a runtime dependency
        return
    S3FileSystem.clear_instance_cache()


def _delete_bucket(bucket: S3Bucket) -> None:
    keys = bucket.keys()
    for start in range(0, len(keys), 1000):
        bucket.client.delete_objects(
            Bucket=bucket.bucket,
            Delete={"Objects": [{"Key": key} for key in keys[start : start + 1000]]},
        )
    bucket.client.delete_bucket(Bucket=bucket.bucket)
