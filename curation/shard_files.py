"""Embedding shard files on the ``embeddings`` storage backend: write once, read many.

Names are unique (a uuid per shard), so a file never changes after it is written and a
reader may keep a decoded shard as long as it likes. Local storage is written atomically
(temporary file + rename) and read through a memory map; other backends (S3) get one
put per shard and are read whole.
"""

from __future__ import annotations

import uuid
from functools import lru_cache
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages

from worker.engine.embedding_shards import (
    EmbeddingShard,
    decode_shard,
    encode_shard,
    read_shard_file,
    write_shard_file,
)

STORAGE_ALIAS = "embeddings"


def shard_storage() -> Storage:
    return storages[STORAGE_ALIAS]


def _local_path(storage: Storage, name: str) -> Path | None:
    try:
        return Path(storage.path(name))
    except NotImplementedError:  # a remote backend
        return None


def shard_file_write(*, model_key: str, hashes: list[str], matrix: np.ndarray) -> str:
    """Store a new shard file and return its storage name."""
    data = encode_shard(model_key=model_key, hashes=hashes, matrix=matrix)
    safe_key = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_key)[:80]
    name = f"{safe_key}/{uuid.uuid4().hex}.q16shard"
    storage = shard_storage()
    local = _local_path(storage, name)
    if local is not None:
        write_shard_file(local, data)
        return name
    return storage.save(name, ContentFile(data))


@lru_cache(maxsize=16)
def shard_file_read(name: str) -> EmbeddingShard:
    """A stored shard, decoded (cached per process: shard files never change)."""
    storage = shard_storage()
    local = _local_path(storage, name)
    if local is not None:
        return read_shard_file(local)
    with storage.open(name, "rb") as file:
        return decode_shard(file.read())


def shard_file_delete(name: str) -> None:
    shard_file_read.cache_clear()
    shard_storage().delete(name)
