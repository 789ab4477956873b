"""The pipelined encoder on generated images, with broken files mixed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tests.engine.imagegen import KIND_B, make_two_kind_images
from worker.engine.clip import ClipModel
from worker.engine.images import load_rgb
from worker.engine.pipeline import EncodeResult, encode_files
from worker.engine.scoring import inappropriate_probability, zero_shot_prompts
from worker.engine.tuning import TuningConfig, classification_metrics, train_prompts


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[str]]:
    """20 good images (two kinds) plus a truncated JPEG at 3 and a text file at 15."""
    folder = tmp_path_factory.mktemp("images")
    images = make_two_kind_images(folder, n_per_kind=10, seed=0)
    paths = [path for path, _ in images]
    kinds = [kind for _, kind in images]
    truncated = folder / "truncated.jpg"
    whole = paths[0].read_bytes()
    truncated.write_bytes(whole[: len(whole) // 2])
    text = folder / "notes.jpg"
    text.write_text("not an image")
    paths.insert(3, truncated)
    kinds.insert(3, "broken")
    paths.insert(15, text)
    kinds.insert(15, "broken")
    return paths, kinds


def test_encodes_good_files_and_records_broken_ones(
    tiny_clip: ClipModel, sources: tuple[list[Path], list[str]]
) -> None:
    paths, _ = sources
    progress: list[int] = []
    result = encode_files(
        tiny_clip, paths, batch_size=8, decode_workers=2, on_batch=progress.append
    )
    assert isinstance(result, EncodeResult)
    assert result.embeddings.shape == (20, tiny_clip.dim)
    assert result.embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(result.embeddings, axis=1), 1.0, atol=1e-5)
    assert result.ok_indices == [i for i in range(22) if i not in (3, 15)]
    assert set(result.failures) == {3, 15}
    assert result.failures[3].startswith("truncated or corrupt image")
    assert result.failures[15] == "not an image"
    assert progress == [8, 16, 22]
    assert set(result.timings) >= {"decode", "forward", "wall"}
    assert result.timings["wall"] > 0 and result.images_per_second > 0


def test_deterministic_and_equal_to_encoding_one_by_one(
    tiny_clip: ClipModel, sources: tuple[list[Path], list[str]]
) -> None:
    paths, _ = sources
    first = encode_files(tiny_clip, paths, batch_size=8, decode_workers=2)
    second = encode_files(tiny_clip, paths, batch_size=8, decode_workers=2)
    np.testing.assert_allclose(first.embeddings, second.embeddings, atol=1e-6)
    serial = encode_files(tiny_clip, paths, batch_size=5, decode_workers=1, prefetch_batches=0)
    np.testing.assert_allclose(serial.embeddings, first.embeddings, atol=1e-5)
    assert serial.ok_indices == first.ok_indices and serial.failures == first.failures

    index = first.ok_indices[4]
    pixels = tiny_clip.preprocess(load_rgb(paths[index], target_size=tiny_clip.image_size))
    direct = tiny_clip.encode_image_batch(torch.stack([pixels]))
    np.testing.assert_allclose(first.embeddings[4], direct[0], atol=1e-5)


def test_empty_input_and_bad_arguments(tiny_clip: ClipModel) -> None:
    calls: list[int] = []
    result = encode_files(tiny_clip, [], on_batch=calls.append)
    assert result.embeddings.shape == (0, tiny_clip.dim)
    assert result.ok_indices == [] and result.failures == {} and calls == []
    with pytest.raises(ValueError):
        encode_files(tiny_clip, [], batch_size=0)
    with pytest.raises(ValueError):
        encode_files(tiny_clip, [], decode_workers=0)


def test_all_broken_batch_still_reports_progress(tiny_clip: ClipModel, tmp_path: Path) -> None:
    broken = [tmp_path / f"{i}.png" for i in range(3)]
    for path in broken:
        path.write_bytes(b"")
    progress: list[int] = []
    result = encode_files(tiny_clip, broken, batch_size=2, on_batch=progress.append)
    assert result.embeddings.shape == (0, tiny_clip.dim)
    assert result.failures == {0: "empty file", 1: "empty file", 2: "empty file"}
    assert progress == [2, 3]


def test_callback_errors_abort_the_run(
    tiny_clip: ClipModel, sources: tuple[list[Path], list[str]]
) -> None:
    paths, _ = sources

    def cancel(done: int) -> None:
        raise RuntimeError(f"cancelled after {done}")

    with pytest.raises(RuntimeError, match="cancelled after 4"):
        encode_files(tiny_clip, paths, batch_size=4, on_batch=cancel)


def test_tiny_clip_separates_the_two_generated_kinds(
    tiny_clip: ClipModel, sources: tuple[list[Path], list[str]]
) -> None:
    """What the end-to-end test relies on: prompts tuned on tiny-CLIP embeddings of the
    two generated kinds tell them apart."""
    paths, kinds = sources
    result = encode_files(tiny_clip, paths, batch_size=8)
    labels = np.array([int(kinds[i] == KIND_B) for i in result.ok_indices])
    init = zero_shot_prompts(tiny_clip)
    tuned = train_prompts(
        result.embeddings, labels, init_prompts=init, config=TuningConfig(epochs=100)
    )
    metrics = classification_metrics(
        labels, inappropriate_probability(result.embeddings, tuned.prompts)
    )
    assert metrics["accuracy"] == 1.0


def test_cpu_schedules_give_the_same_embeddings(
    tiny_clip: ClipModel, sources: tuple[list[Path], list[str]]
) -> None:
    from worker.engine.pipeline import CpuSchedule

    paths, _ = sources
    results = {
        name: encode_files(
            tiny_clip, paths, batch_size=8, decode_workers=2, schedule=CpuSchedule(fixed=name)
        )
        for name in ("alternate", "overlap")
    }
    assert results["alternate"].schedule == "alternate"
    assert results["overlap"].schedule == "overlap"
    assert results["alternate"].ok_indices == results["overlap"].ok_indices
    assert results["alternate"].failures == results["overlap"].failures
    np.testing.assert_allclose(
        results["alternate"].embeddings, results["overlap"].embeddings, atol=1e-6
    )
    with pytest.raises(ValueError, match="unknown schedule"):
        CpuSchedule(fixed="sideways")


def test_cpu_schedule_is_measured_then_kept(
    tiny_clip: ClipModel, sources: tuple[list[Path], list[str]]
) -> None:
    from worker.engine.pipeline import CpuSchedule

    paths, _ = sources
    schedule = CpuSchedule(trial_steps=2)
    # 22 files in steps of 2 (batch 2): 11 steps, 8 of them trials (2 timed per way).
    first = encode_files(tiny_clip, paths, batch_size=2, decode_workers=2, schedule=schedule)
    assert first.schedule == "alternate+overlap"
    assert schedule.chosen in {"alternate", "overlap"}
    assert all(len(rates) == 2 for rates in schedule.trials.values())
    median = {name: sorted(r)[1] for name, r in schedule.trials.items()}
    assert schedule.chosen == max(median, key=lambda name: median[name])
    later = encode_files(tiny_clip, paths, batch_size=2, decode_workers=2, schedule=schedule)
    assert later.schedule == schedule.chosen
    np.testing.assert_allclose(later.embeddings, first.embeddings, atol=1e-6)


def test_cpu_steps_at_the_forward_batch_size(
    tiny_clip: ClipModel, sources: tuple[list[Path], list[str]]
) -> None:
    progress: list[int] = []
    encode_files(tiny_clip, sources[0], batch_size=64, decode_workers=2, on_batch=progress.append)
    step = tiny_clip.cpu_forward_batch
    assert progress == [min(n, len(sources[0])) for n in range(step, len(sources[0]) + step, step)]
