"""Embedding shard files: round trips, and clear errors for files that are not whole shards."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from worker.engine.embedding_shards import (
    ShardError,
    decode_shard,
    encode_shard,
    read_shard_file,
    write_shard_file,
)


def _shard(n: int = 5, dim: int = 8) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(n)
    hashes = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]
    return hashes, rng.normal(size=(n, dim)).astype(np.float32)


def test_a_shard_round_trips_through_bytes_and_a_file(tmp_path):
    hashes, matrix = _shard()
    data = encode_shard(model_key="ViT-B-16/openai", hashes=hashes, matrix=matrix)
    shard = decode_shard(data)
    assert (shard.model_key, shard.dim, shard.count) == ("ViT-B-16/openai", 8, 5)
    assert shard.hashes() == hashes
    assert shard.matrix.dtype == np.float16
    np.testing.assert_array_equal(shard.matrix, matrix.astype(np.float16))

    path = tmp_path / "a" / "shard.q16shard"
    write_shard_file(path, data)
    assert [p.name for p in path.parent.iterdir()] == ["shard.q16shard"]  # no temporary left
    from_file = read_shard_file(path)
    assert from_file.hashes() == hashes
    np.testing.assert_array_equal(from_file.matrix[[4, 0]], matrix[[4, 0]].astype(np.float16))


def test_an_empty_shard_round_trips():
    shard = decode_shard(encode_shard(model_key="k", hashes=[], matrix=np.zeros((0, 4))))
    assert (shard.count, shard.dim, shard.hashes()) == (0, 4, [])


@pytest.mark.parametrize("cut", [0, 10, 30, 100, -1])
def test_a_truncated_shard_is_a_clear_error(tmp_path, cut):
    hashes, matrix = _shard()
    data = encode_shard(model_key="k", hashes=hashes, matrix=matrix)
    cut_data = data[:cut] if cut >= 0 else data[:-1]
    with pytest.raises(ShardError, match="truncated"):
        decode_shard(cut_data)
    path = tmp_path / "cut.q16shard"
    path.write_bytes(cut_data)
    with pytest.raises(ShardError, match="truncated"):
        read_shard_file(path)


def test_corrupt_shards_are_clear_errors():
    hashes, matrix = _shard()
    data = encode_shard(model_key="k", hashes=hashes, matrix=matrix)
    with pytest.raises(ShardError, match="bad magic"):
        decode_shard(b"NOTASHRD" + data[8:])
    with pytest.raises(ShardError, match="version 9"):
        decode_shard(data[:8] + (9).to_bytes(2, "little") + data[10:])
    with pytest.raises(ShardError, match="past its end"):
        decode_shard(data + b"\0")


def test_bad_input_is_refused_when_writing():
    hashes, matrix = _shard()
    with pytest.raises(ValueError, match="rows but"):
        encode_shard(model_key="k", hashes=hashes[:2], matrix=matrix)
    with pytest.raises(ValueError, match="sha256"):
        encode_shard(model_key="k", hashes=["ab"] * 5, matrix=matrix)
    with pytest.raises(ValueError, match="not hex"):
        encode_shard(model_key="k", hashes=["zz" * 32] * 5, matrix=matrix)
    with pytest.raises(ValueError, match="NaN"):
        encode_shard(model_key="k", hashes=hashes, matrix=matrix * np.inf)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        encode_shard(model_key="k", hashes=hashes, matrix=matrix[0])
