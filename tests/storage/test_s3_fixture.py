"""The moto server fixture itself: a real HTTP S3 endpoint, reachable by boto3 and s3fs."""

from __future__ import annotations

import fsspec


def test_bucket_is_reachable_by_boto3_and_fsspec(s3):
    s3.put("hello/one.txt", b"one")
    with fsspec.open(f"s3://{s3.bucket}/hello/one.txt", "rb") as handle:
        assert handle.read() == b"one"
    with fsspec.open(f"s3://{s3.bucket}/hello/two.txt", "wb") as handle:
        handle.write(b"two")
    assert s3.keys("hello/") == ["hello/one.txt", "hello/two.txt"]
    assert s3.endpoint_url.startswith("http://127.0.0.1:")


def test_each_test_gets_a_fresh_bucket(s3):
    assert s3.keys() == []
