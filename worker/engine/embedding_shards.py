"""Embedding shard files: many float16 embeddings and their content hashes in one file.

A shard holds the embeddings one scoring chunk encoded, so that the database keeps only a
narrow reference per embedding (model key, hash -> shard, row) and a rescore reads a few
large files sequentially instead of a million blobs.

Layout (little-endian), every section starting on a 64-byte boundary so that the matrix
can be memory-mapped and viewed without a copy::

    header   magic b"Q16EMBSH", version u16, key length u16, dim u32, count u64,
             model key (utf-8), zero padding to 64 bytes
    hashes   count x 32 bytes: the sha256 digests of the rows' files, raw
    matrix   count x dim float16, row-major (the worker.engine.store embedding format)

The file size is exact: a shorter file is truncated, a longer one corrupt. Files are
written to a temporary name beside the target, fsynced and renamed, so a reader never
sees half a shard. No Django here: curation stores the bytes through its storage backend.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "MAGIC",
    "VERSION",
    "EmbeddingShard",
    "ShardError",
    "decode_shard",
    "encode_shard",
    "read_shard_file",
    "write_shard_file",
]

MAGIC = b"Q16EMBSH"
VERSION = 1
_HEADER = struct.Struct("<8sHHIQ")  # magic, version, key length, dim, count
_ALIGN = 64
_DIGEST_BYTES = 32
_DTYPE = np.dtype("<f2")


class ShardError(ValueError):
    """A shard file is not one (bad magic), of an unknown version, truncated or corrupt."""


@dataclass(frozen=True)
class EmbeddingShard:
    model_key: str
    dim: int
    # (count, 32) uint8: raw sha256 digests, row i belongs to matrix row i.
    digests: np.ndarray
    # (count, dim) float16, read-only (a view of the file's bytes or of a memory map).
    matrix: np.ndarray

    @property
    def count(self) -> int:
        return int(self.matrix.shape[0])

    def hashes(self) -> list[str]:
        """The rows' content hashes as lowercase hex (what Image.sha256 holds)."""
        raw = self.digests.tobytes()
        return [raw[i : i + _DIGEST_BYTES].hex() for i in range(0, len(raw), _DIGEST_BYTES)]


def _aligned(offset: int) -> int:
    return -(-offset // _ALIGN) * _ALIGN


def _layout(key_length: int, dim: int, count: int) -> tuple[int, int, int]:
    """Offsets of the hashes and the matrix, and the file's exact size."""
    hashes_at = _aligned(_HEADER.size + key_length)
    matrix_at = _aligned(hashes_at + count * _DIGEST_BYTES)
    return hashes_at, matrix_at, matrix_at + count * dim * _DTYPE.itemsize


def encode_shard(*, model_key: str, hashes: list[str], matrix: np.ndarray) -> bytes:
    """The bytes of a shard of ``matrix`` (N, D) whose row i is the file with hashes[i].

    Raises:
        ValueError: a hash that is not 64 hex digits, a row count that differs from the
            hashes', a matrix that is not 2-D, or values that are not finite float16.
    """
    a = np.asarray(matrix)
    if a.ndim != 2 or a.shape[1] <= 0:
        raise ValueError(f"a shard matrix must be (N, D) with D > 0, got shape {a.shape}")
    if a.shape[0] != len(hashes):
        raise ValueError(f"{a.shape[0]} rows but {len(hashes)} hashes")
    half = np.ascontiguousarray(a, dtype=_DTYPE)
    if not np.isfinite(half).all():
        raise ValueError("shard embeddings contain NaN or infinity (or overflow float16)")
    try:
        digests = b"".join(bytes.fromhex(sha) for sha in hashes)
    except ValueError as exc:
        raise ValueError(f"a shard hash is not hex: {exc}") from None
    if len(digests) != _DIGEST_BYTES * len(hashes):
        raise ValueError("every shard hash must be a sha256 (64 hex digits)")
    key = model_key.encode()
    if len(key) > 0xFFFF:
        raise ValueError("model key too long for a shard header")
    count, dim = half.shape
    hashes_at, matrix_at, size = _layout(len(key), dim, count)
    out = bytearray(size)
    header = _HEADER.pack(MAGIC, VERSION, len(key), dim, count) + key
    out[: len(header)] = header
    out[hashes_at : hashes_at + len(digests)] = digests
    out[matrix_at:] = half.tobytes()
    return bytes(out)


def decode_shard(data: bytes | bytearray | memoryview | np.ndarray) -> EmbeddingShard:
    """Read a shard from its bytes (or a uint8 memory map) without copying the matrix.

    Raises:
        ShardError: not a shard, an unknown version, truncated, or with trailing bytes.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if buffer.size < _HEADER.size:
        raise ShardError(f"truncated embedding shard: {buffer.size} bytes, no complete header")
    magic, version, key_length, dim, count = _HEADER.unpack(buffer[: _HEADER.size].tobytes())
    if magic != MAGIC:
        raise ShardError("not an embedding shard (bad magic)")
    if version != VERSION:
        raise ShardError(f"embedding shard version {version} is not supported ({VERSION} is)")
    if dim <= 0:
        raise ShardError(f"corrupt embedding shard: dim {dim}")
    hashes_at, matrix_at, size = _layout(key_length, dim, count)
    if buffer.size < size:
        raise ShardError(
            f"truncated embedding shard: {buffer.size} bytes, {size} expected "
            f"for {count} rows of dim {dim}"
        )
    if buffer.size > size:
        raise ShardError(f"corrupt embedding shard: {buffer.size - size} bytes past its end")
    try:
        model_key = buffer[_HEADER.size : _HEADER.size + key_length].tobytes().decode()
    except UnicodeDecodeError:
        raise ShardError("corrupt embedding shard: the model key is not utf-8") from None
    digests = buffer[hashes_at : hashes_at + count * _DIGEST_BYTES].reshape(count, _DIGEST_BYTES)
    matrix = buffer[matrix_at:size].view(_DTYPE).reshape(count, dim)
    return EmbeddingShard(model_key=model_key, dim=dim, digests=digests, matrix=matrix)


def write_shard_file(path: Path, data: bytes) -> None:
    """Write shard bytes to path atomically: a temporary file beside it, fsync, rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_shard_file(path: Path) -> EmbeddingShard:
    """Memory-map a shard file (the pages load as rows are read: a sequential read).

    Raises:
        ShardError: as decode_shard; FileNotFoundError when there is no such file.
    """
    if path.stat().st_size == 0:
        raise ShardError(f"truncated embedding shard: {path} is empty")
    return decode_shard(np.memmap(path, dtype=np.uint8, mode="r"))
