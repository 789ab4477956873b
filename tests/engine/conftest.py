"""Engine fixtures: a tiny random-weight CLIP loaded through the real code path.

Nothing here needs Django or a database; run with ``pytest -p no:django tests/engine``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.engine.clip import ClipModel, ModelSpec, build_random_checkpoint, load_clip

REFERENCE_PROMPTS = (
    Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "q16_prompts"
)


@pytest.fixture(scope="session")
def tiny_clip_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped ``q16-tiny`` config with random weights (seed 0), saved as a checkpoint."""
    return build_random_checkpoint(
        "q16-tiny", tmp_path_factory.mktemp("clip") / "q16-tiny.pt", seed=0
    )


@pytest.fixture(scope="session")
def tiny_clip(tiny_clip_checkpoint: Path) -> ClipModel:
    """The tiny CLIP, loaded on CPU exactly like real weights from a checkpoint."""
    return load_clip(ModelSpec("q16-tiny", checkpoint_path=str(tiny_clip_checkpoint)), device="cpu")


@pytest.fixture(scope="session")
def reference_prompts_dir() -> Path:
    """The paper's published prompt files (beside the repository, never copied into it)."""
    from tests.conftest import require

    require(REFERENCE_PROMPTS.is_dir(), f"reference prompts not found at {REFERENCE_PROMPTS}")
    return REFERENCE_PROMPTS
