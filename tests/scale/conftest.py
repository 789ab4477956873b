"""Fixtures shared with tests/storage: the S3-compatible bucket as the storage backend."""

from tests.storage.conftest import s3_storage  # noqa: F401 (the fixture)
