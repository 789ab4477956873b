"""Scoring runs in-process: chunking, the embedding cache, idempotent chunks, failures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from curation.models import Embedding, Image, Score, ScoringChunk, ScoringRun
from curation.services.chunks import scoring_chunk_process
from curation.services.clip_runtime import get_clip
from curation.services.datasets import dataset_create_from_folder, dataset_import
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.scoring import scoring_run_fail, scoring_run_start
from reviewer.models import ReviewItem
from tests.engine.imagegen import make_two_kind_images
from worker.engine.clip import ModelLoadError
from worker.engine.scoring import inappropriate_probability
from worker.engine.store import embeddings_from_bytes, prompts_from_bytes

pytestmark = pytest.mark.django_db


class CountingProvider:
    """The worker's model provider, counting how many images reach the image encoder."""

    def __init__(self) -> None:
        self.images = 0

    def __call__(self, model_key: str):
        clip = get_clip(model_key)
        provider = self

        class Counting:
            def __getattr__(self, name):
                return getattr(clip, name)

            def encode_image_batch(self, pixels):
                provider.images += len(pixels)
                return clip.encode_image_batch(pixels)

        return Counting()


@pytest.fixture
def scored_setup(tiny_model_settings, tmp_path):
    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 10, seed=1)
    first = sorted(folder.rglob("*.*"))[0]
    shutil.copyfile(first, folder / "duplicate-copy.png")
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="s", folder=str(folder), queue=False).pk
    )
    version = prompt_version_create_zero_shot(clip=get_clip(tiny_model_settings_key()))
    return dataset, version


def tiny_model_settings_key() -> str:
    from curation.services.clip_config import configured_model_spec

    return configured_model_spec().key


def test_scores_match_the_formula_and_duplicates_are_encoded_once(scored_setup):
    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=8, queue=False
    )
    provider = CountingProvider()
    for chunk in run.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=provider)
    run.refresh_from_db()
    assert run.state == ScoringRun.State.SUCCEEDED
    assert (run.total, run.processed, run.chunks_total) == (21, 21, 3)
    assert run.encoded == 20 and provider.images == 20
    assert Embedding.objects.count() == 20

    # Stored scores are exactly softmax(100 * e @ normalize(P).T)[:, 1] of the cached embeddings.
    prompts = prompts_from_bytes(bytes(version.vectors))
    for score in Score.objects.filter(run=run).select_related("image")[:5]:
        blob = Embedding.objects.get(sha256=score.image.sha256).vector
        expected = inappropriate_probability(
            embeddings_from_bytes(bytes(blob), dim=version.dim), prompts
        )
        assert score.p_inappropriate == pytest.approx(float(expected[0]), abs=1e-6)
    flagged = Score.objects.filter(run=run, p_inappropriate__gte=0.5).count()
    assert run.flagged == flagged == ReviewItem.objects.filter(state="pending").count()


def test_a_chunk_processed_twice_is_counted_once(scored_setup):
    dataset, version = scored_setup
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    (chunk,) = run.chunks.all()
    scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    # A redelivered task (acks_late after a lost worker) finds the chunk done.
    ScoringChunk.objects.filter(pk=chunk.pk).update(state=ScoringChunk.State.DONE)
    scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    run.refresh_from_db()
    assert run.processed == 21 and run.chunks_done == 1
    assert Score.objects.filter(run=run).count() == 21


def test_rescore_uses_only_the_cache(scored_setup):
    dataset, version = scored_setup
    first = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    for chunk in first.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    rescore = scoring_run_start(
        dataset=dataset,
        prompt_version=version,
        threshold=0.3,
        kind=ScoringRun.Kind.RESCORE,
        queue=False,
    )
    for chunk in rescore.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=None)
    rescore.refresh_from_db()
    assert rescore.state == ScoringRun.State.SUCCEEDED and rescore.encoded == 0
    assert Score.objects.filter(run=rescore).count() == 21


def test_unreadable_files_fail_alone_and_missing_cache_fails_rescore(scored_setup):
    dataset, version = scored_setup
    victim = Image.objects.filter(dataset=dataset).order_by("id").last()
    # The file changed on disk after the import: it no longer decodes.
    Path(dataset.root_path, victim.relative_path).write_bytes(b"gone")
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    for chunk in run.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    run.refresh_from_db()
    assert run.state == ScoringRun.State.SUCCEEDED
    assert (run.processed, run.failed) == (21, 1)
    assert not Score.objects.filter(run=run, image=victim).exists()
    assert victim.sha256[:12] in run.chunks.get().error


def test_a_worker_with_other_weights_refuses_the_run(scored_setup, settings):
    dataset, version = scored_setup
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, queue=False)
    settings.Q16_CLIP_MODEL = "ViT-B-16"
    settings.Q16_CLIP_CHECKPOINT = ""
    with pytest.raises(ModelLoadError, match="configured with ViT-B-16/openai"):
        scoring_chunk_process(chunk_id=run.chunks.get().pk, clip_provider=get_clip)
    scoring_run_fail(run_id=run.pk, chunk_id=run.chunks.get().pk, reason="model could not load")
    run.refresh_from_db()
    assert run.state == ScoringRun.State.FAILED and "could not load" in run.error
