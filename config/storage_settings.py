"""Where Q16 keeps its files: Django's STORAGES from Q16_STORAGE (local disk or an S3 bucket).

Named storages (curation.storage names them for the code):
  default / media  stored import files (uploaded archives, URL lists)
  thumbnails       cached JPEG thumbnails
  exports          blocklist export files
  embeddings       embedding shard files

`local` (the default) keeps today's layout under MEDIA_ROOT (read when a file is used, so a
changed MEDIA_ROOT applies); `s3` puts them all in one bucket, under
<Q16_S3_PREFIX>/<name>/. Credentials come from the usual AWS_* variables (boto3's chain).
Imported by config.settings only: no Django models here.
"""

from __future__ import annotations

import importlib
from typing import Any

from django.core.exceptions import ImproperlyConfigured

STORAGE_KINDS = ("local", "s3")
# Folder of each named storage: under MEDIA_ROOT (local) or under the prefix (s3).
STORAGE_FOLDERS = {
    "media": "",
    "thumbnails": "thumbnails",
    "exports": "exports",
    "embeddings": "embeddings",
}
S3_FOLDERS = {**STORAGE_FOLDERS, "media": "media"}
MEDIA_FOLDER_BACKEND = "curation.storage.MediaFolderStorage"
S3_BACKEND = "storages.backends.s3.S3Storage"


def file_storages(
    *,
    kind: str,
    bucket: str = "",
    prefix: str = "",
    endpoint_url: str = "",
    region: str = "",
) -> dict[str, dict[str, Any]]:
    """The STORAGES entries for Q16's files (staticfiles is not among them)."""
    if kind not in STORAGE_KINDS:
        raise ImproperlyConfigured(
            f"Q16_STORAGE={kind!r} is not a storage kind: use one of {', '.join(STORAGE_KINDS)}."
        )
    if kind == "local":
        entries = {
            name: {"BACKEND": MEDIA_FOLDER_BACKEND, "OPTIONS": {"folder": folder}}
            for name, folder in STORAGE_FOLDERS.items()
        }
    else:
        if not bucket:
            raise ImproperlyConfigured(
                "Q16_STORAGE=s3 needs Q16_S3_BUCKET (the bucket that holds media, thumbnails, "
                "exports and embeddings)."
            )
        base = prefix.strip("/")
        entries = {
            name: {
                "BACKEND": S3_BACKEND,
                "OPTIONS": _s3_options(
                    bucket=bucket,
                    location="/".join(part for part in (base, folder) if part),
                    endpoint_url=endpoint_url,
                    region=region,
                    # Thumbnails are named by content hash: a second generation is the same file.
                    overwrite=name == "thumbnails",
                ),
            }
            for name, folder in S3_FOLDERS.items()
        }
    entries["default"] = entries["media"]
    return entries


def _s3_options(
    *, bucket: str, location: str, endpoint_url: str, region: str, overwrite: bool
) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": location,
        "file_overwrite": overwrite,
        "default_acl": None,
        "querystring_auth": True,
        "querystring_expire": 300,
    }
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["region_name"] = region
    return options


def fsspec_s3_options(*, endpoint_url: str, key: str, secret: str) -> dict[str, Any]:
    """fsspec's s3 defaults, so s3:// source URLs read through the same endpoint."""
    options: dict[str, Any] = {}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if key and secret:
        options["key"] = key
        options["secret"] = secret
    return options


def configure_fsspec(*, endpoint_url: str, key: str, secret: str) -> None:
    """Merge fsspec_s3_options() into fsspec's s3 defaults (what s3fs reads for s3:// URLs)."""
    fsspec_config = importlib.import_module("fsspec.config")  # untyped; loaded only for s3
    fsspec_config.conf.setdefault("s3", {}).update(
        fsspec_s3_options(endpoint_url=endpoint_url, key=key, secret=secret)
    )
