"""Q16_STORAGE=s3 against the moto server (tests/s3.py): settings for this process and a worker."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from config.storage_settings import file_storages
from curation.storage import storages_reset
from tests.s3 import S3Bucket

PREFIX = "q16test"


@dataclass
class S3Storage:
    bucket: S3Bucket
    prefix: str

    def keys(self, folder: str) -> list[str]:
        return self.bucket.keys(f"{self.prefix}/{folder}/")

    def worker_env(self) -> dict[str, str]:
        """What a worker process on another machine needs to use the same bucket."""
        return {
            **self.bucket.env(),
            "Q16_STORAGE": "s3",
            "Q16_S3_BUCKET": self.bucket.bucket,
            "Q16_S3_PREFIX": self.prefix,
            "Q16_S3_ENDPOINT_URL": self.bucket.endpoint_url,
        }


@pytest.fixture
def s3_storage(s3, settings, tmp_path) -> S3Storage:
    """This process stores files in the test's bucket; MEDIA_ROOT is an empty folder that
    must stay empty (nothing may fall back to the local disk)."""
    settings.MEDIA_ROOT = tmp_path / "web-media"
    settings.Q16_STORAGE = "s3"
    settings.STORAGES = {
        **settings.STORAGES,
        **file_storages(kind="s3", bucket=s3.bucket, prefix=PREFIX, endpoint_url=s3.endpoint_url),
    }
    storages_reset()  # override_settings does this too; harmless twice
    yield S3Storage(bucket=s3, prefix=PREFIX)
    storages_reset()
