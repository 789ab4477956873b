"""The paper's published prompt format: round trips, real files, and hostile pickles."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from worker.engine.prompt_files import (
    PromptFileError,
    read_published_prompts,
    write_published_prompts,
)

PAPER_HEADER = b"\x80\x03cnumpy.core.multiarray\n_reconstruct\n"


def _export(prompts: np.ndarray) -> bytes:
    out = io.BytesIO()
    write_published_prompts(prompts, out)
    return out.getvalue()


def test_round_trip_within_float16() -> None:
    prompts = np.random.default_rng(0).normal(scale=5.0, size=(2, 512)).astype(np.float32)
    data = _export(prompts)
    assert data.startswith(PAPER_HEADER)
    restored = read_published_prompts(data)
    assert restored.dtype == np.float32
    assert restored.shape == (2, 512)
    np.testing.assert_allclose(restored, prompts, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(restored, prompts.astype(np.float16).astype(np.float32))
    # Plain pickle (what the paper's code uses) reads the export as a float16 array.
    plain = pickle.loads(data)
    assert plain.dtype == np.float16 and plain.shape == (2, 512)


def test_accepts_file_objects_npy_and_other_pickle_protocols() -> None:
    prompts = np.arange(16, dtype=np.float64).reshape(2, 8) + 1.0
    np.testing.assert_array_equal(read_published_prompts(io.BytesIO(_export(prompts))), prompts)
    npy = io.BytesIO()
    np.save(npy, prompts)
    np.testing.assert_array_equal(read_published_prompts(npy.getvalue()), prompts)
    for protocol in (2, 4, 5):
        data = pickle.dumps(prompts.astype(np.float16), protocol=protocol)
        np.testing.assert_array_equal(read_published_prompts(data), prompts)


@pytest.mark.parametrize(
    ("model", "dim"), [("ViT-B-16", 512), ("ViT-B-32", 512), ("ViT-L-14", 768)]
)
def test_reads_the_papers_files_and_exports_them_byte_for_byte(
    reference_prompts_dir: Path, model: str, dim: int
) -> None:
    raw = (reference_prompts_dir / model / "prompts.p").read_bytes()
    prompts = read_published_prompts(raw, expected_dim=dim)
    assert prompts.shape == (2, dim)
    assert prompts.dtype == np.float32
    assert np.isfinite(prompts).all()
    assert _export(prompts) == raw


def test_dimension_mismatch_names_the_model(reference_prompts_dir: Path) -> None:
    raw = (reference_prompts_dir / "ViT-L-14" / "prompts.p").read_bytes()
    with pytest.raises(
        PromptFileError,
        match="prompt file has dimension 768 but model ViT-B-16/openai embeds in 512",
    ):
        read_published_prompts(raw, expected_dim=512, model_key="ViT-B-16/openai")
    with pytest.raises(PromptFileError, match="but the model embeds in 512"):
        read_published_prompts(raw, expected_dim=512)


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (eval, ("__import__('os').getpid()",))


def test_malicious_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for payload in (_RunsShell(marker), [np.ones((2, 4)), _RunsShell(marker)]):
        data = pickle.dumps(payload, protocol=3)
        with pytest.raises(PromptFileError, match="not allowed"):
            read_published_prompts(data)
    with pytest.raises(PromptFileError, match="builtins.eval"):
        read_published_prompts(pickle.dumps(_Evals(), protocol=4))
    assert not marker.exists()


def test_array_building_globals_cannot_be_abused() -> None:
    # REDUCE numpy.ndarray directly with a huge shape: would allocate 8 TB.
    huge = b"\x80\x03cnumpy\nndarray\nK\x02J\x00\xca\x9a;\x86q\x00\x85R."
    with pytest.raises(PromptFileError):
        read_published_prompts(huge)
    # _reconstruct with a non-empty shape.
    sneaky = b"\x80\x03cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ\x00\xca\x9a;\x85C\x01b\x87R."
    with pytest.raises(PromptFileError, match="unexpected array construction"):
        read_published_prompts(sneaky)
    # Object arrays can carry arbitrary objects: refused at the dtype.
    objects = pickle.dumps(np.array([[1, "x"], [2, "y"]], dtype=object), protocol=3)
    with pytest.raises(PromptFileError, match="dtype"):
        read_published_prompts(objects)


@pytest.mark.parametrize(
    "array",
    [
        np.ones((3, 8), np.float16),
        np.ones((8,), np.float16),
        np.ones((2, 8, 1), np.float16),
        np.ones((1, 8), np.float16),
    ],
)
def test_wrong_shapes_are_refused(array: np.ndarray) -> None:
    with pytest.raises(PromptFileError, match=r"expected \(2, D\)"):
        read_published_prompts(pickle.dumps(array, protocol=3))


def test_other_bad_contents_are_refused() -> None:
    with pytest.raises(PromptFileError, match="NaN"):
        read_published_prompts(pickle.dumps(np.full((2, 4), np.nan, np.float16), protocol=3))
    with pytest.raises(PromptFileError, match="all-zero row"):
        read_published_prompts(pickle.dumps(np.zeros((2, 4), np.float32), protocol=3))
    with pytest.raises(PromptFileError, match="not a numpy array"):
        read_published_prompts(pickle.dumps({"prompts": [1, 2]}, protocol=3))
    with pytest.raises(PromptFileError, match="non-numeric"):
        read_published_prompts(pickle.dumps(np.array([["a"], ["b"]]), protocol=3))
    with pytest.raises(PromptFileError, match="empty"):
        read_published_prompts(b"")
    with pytest.raises(PromptFileError, match="not a prompt file"):
        read_published_prompts(b"this is a text file, not a pickle")
    with pytest.raises(PromptFileError, match="unreadable prompt pickle"):
        read_published_prompts(_export(np.ones((2, 8)))[:-10])
    with pytest.raises(PromptFileError):
        write_published_prompts(np.ones((3, 8)), io.BytesIO())
    with pytest.raises(PromptFileError, match="overflow float16"):
        write_published_prompts(np.full((2, 8), 1e6), io.BytesIO())
