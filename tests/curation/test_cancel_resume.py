"""Cancel and resume of scoring runs, imports and prompt jobs (services, and one real worker).

- Cancelling twice is a no-op; cancelling or resuming a finished object is a StateConflict.
- A chunk whose run was cancelled while it ran drops its result; resume queues only the
  chunks that are not done (failed ones reset), and the run then completes exactly once.
- An import stops at the next batch (or while it lists the folder) and a resume carries on
  with the files not recorded yet. A stopped archive import's upload is deleted.
- A prompt job cancelled while it ran drops the version it made; resume runs it again.
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from curation.errors import StateConflict
from curation.models import (
    Dataset,
    Image,
    PromptJob,
    PromptVersion,
    Score,
    ScoringChunk,
    ScoringRun,
)
from curation.services import chunks as scoring_service
from curation.services import indexing as indexing_service
from curation.services.chunks import scoring_chunk_process
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_folder,
    dataset_import,
    dataset_import_cancel,
    dataset_import_resume,
)
from curation.services.prompt_jobs import (
    prompt_job_cancel,
    prompt_job_create_zero_shot,
    prompt_job_resume,
)
from curation.services.scoring import (
    scoring_run_cancel,
    scoring_run_resume,
    scoring_run_start,
)
from curation.services.sources import files as source_files
from labels import training as prompts_service
from labels.training import prompt_job_run
from tests.engine.imagegen import make_two_kind_images
from tests.helpers import wait_for

pytestmark = pytest.mark.django_db


def _png(color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (24, 16), color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def scored_setup(tiny_model_settings, tmp_path):
    """24 imported images and zero-shot prompts of the tiny CLIP."""
    from curation.services.clip_config import configured_model_key
    from curation.services.clip_runtime import get_clip
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot

    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 12, seed=5)
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="cr", folder=str(folder), queue=False).pk
    )
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
    return dataset, version


def _process(chunk: ScoringChunk) -> ScoringChunk:
    from curation.services.clip_runtime import get_clip

    return scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)


def test_run_cancel_twice_then_resume_queues_only_the_chunks_not_done(
    scored_setup, django_capture_on_commit_callbacks
):
    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=6, queue=False
    )
    chunks = list(run.chunks.order_by("index"))
    assert len(chunks) == 4
    _process(chunks[0])

    cancelled = scoring_run_cancel(run=run)
    assert cancelled.state == ScoringRun.State.CANCELLED
    assert scoring_run_cancel(run=run).state == ScoringRun.State.CANCELLED  # idempotent

    # A chunk delivered after the cancel does nothing.
    assert _process(chunks[1]).state == ScoringChunk.State.PENDING
    ScoringChunk.objects.filter(pk=chunks[2].pk).update(
        state=ScoringChunk.State.FAILED, attempts=3, error="boom"
    )

    with django_capture_on_commit_callbacks() as callbacks:
        resumed = scoring_run_resume(run=run)
    assert resumed.state == ScoringRun.State.RUNNING and resumed.error == ""
    assert len(callbacks) == 1  # one callback sending the three not-done chunks
    chunk2 = ScoringChunk.objects.get(pk=chunks[2].pk)
    assert (chunk2.state, chunk2.attempts, chunk2.error) == (ScoringChunk.State.PENDING, 0, "")
    assert ScoringChunk.objects.get(pk=chunks[0].pk).state == ScoringChunk.State.DONE

    for chunk in chunks[1:]:
        _process(chunk)
    run.refresh_from_db()
    assert run.state == ScoringRun.State.SUCCEEDED
    assert run.chunks_done == 4 and run.processed == run.total == 24
    assert Score.objects.filter(run=run).count() == 24

    with pytest.raises(StateConflict, match="only a cancelled or failed run can be resumed"):
        scoring_run_resume(run=run)
    with pytest.raises(StateConflict, match="only a pending or running run can be cancelled"):
        scoring_run_cancel(run=run)


def test_chunk_cancelled_while_it_runs_drops_its_result(scored_setup, monkeypatch):
    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=12, queue=False
    )
    chunk = run.chunks.order_by("index").first()
    real = scoring_service._embeddings_for

    def cancel_meanwhile(**kwargs):
        result = real(**kwargs)
        scoring_run_cancel(run=run)  # the admin presses Cancel while the worker encodes
        return result

    monkeypatch.setattr(scoring_service, "_embeddings_for", cancel_meanwhile)
    assert _process(chunk).state == ScoringChunk.State.PENDING
    run.refresh_from_db()
    assert run.state == ScoringRun.State.CANCELLED
    assert (run.chunks_done, run.processed) == (0, 0)
    assert not Score.objects.filter(run=run).exists()


def test_resume_of_a_run_whose_chunks_all_finished_marks_it_succeeded(scored_setup):
    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=24, queue=False
    )
    _process(run.chunks.get())
    ScoringRun.objects.filter(pk=run.pk).update(state=ScoringRun.State.FAILED, error="late")
    assert scoring_run_resume(run=run).state == ScoringRun.State.SUCCEEDED


# --- Imports --------------------------------------------------------------------------------


def _folder(tmp_path, n: int):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(n):
        (folder / f"{i:04d}.png").write_bytes(_png((i % 250, 10, 20)))
    return folder


def test_import_cancelled_between_batches_stops_and_resume_carries_on(
    tmp_path, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(indexing_service, "IMPORT_BATCH", 4)
    dataset = dataset_create_from_folder(name="big", folder=str(_folder(tmp_path, 14)), queue=False)
    seen = []

    def progress(done, total):
        seen.append(done)
        if len(seen) == 1:
            dataset_import_cancel(dataset=dataset)

    dataset = dataset_import(dataset_id=dataset.pk, progress=progress)
    assert dataset.state == Dataset.State.CANCELLED
    assert seen == [4]  # stopped before the second batch
    assert dataset.images.count() == 4
    assert dataset_import_cancel(dataset=dataset).state == Dataset.State.CANCELLED

    with django_capture_on_commit_callbacks() as callbacks:
        resumed = dataset_import_resume(dataset=dataset)
    assert resumed.state == Dataset.State.PENDING and len(callbacks) == 1
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY
    assert dataset.images.count() == 14 == dataset.processed
    assert dataset.images.values("relative_path").distinct().count() == 14

    with pytest.raises(StateConflict, match="only a cancelled or failed import can be resumed"):
        dataset_import_resume(dataset=dataset)
    with pytest.raises(StateConflict, match="has already finished"):
        dataset_import_cancel(dataset=dataset)


def test_folder_listing_looks_for_a_cancellation(tmp_path, monkeypatch):
    monkeypatch.setattr(source_files, "WALK_CHECK_EVERY", 5)
    dataset = dataset_create_from_folder(
        name="walk", folder=str(_folder(tmp_path, 30)), queue=False
    )
    Dataset.objects.filter(pk=dataset.pk).update(state=Dataset.State.IMPORTING)
    real = source_files.iter_folder_files

    def walk_then_cancel(root):
        for count, entry in enumerate(real(root)):
            if count == 2:
                dataset_import_cancel(dataset=dataset)
            yield entry

    monkeypatch.setattr(source_files, "iter_folder_files", walk_then_cancel)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.CANCELLED
    assert not dataset.images.exists()


def test_a_cancelled_import_task_does_nothing(tmp_path):
    dataset = dataset_create_from_folder(name="late", folder=str(_folder(tmp_path, 3)), queue=False)
    dataset_import_cancel(dataset=dataset)
    assert dataset_import(dataset_id=dataset.pk).state == Dataset.State.CANCELLED
    assert not dataset.images.exists()


def _zip_upload(files: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return SimpleUploadedFile("up.zip", buffer.getvalue(), content_type="application/zip")


def test_failed_archive_import_deletes_the_upload_and_cannot_resume(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    upload = SimpleUploadedFile("bad.zip", b"not a zip at all", content_type="application/zip")
    dataset = dataset_create_from_archive(name="bad", archive=upload, queue=False)
    stored = dataset.source
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.FAILED
    assert not (tmp_path / "media" / "archives").joinpath(stored).exists()
    assert not list((tmp_path / "media" / "archives").iterdir())
    with pytest.raises(StateConflict, match="upload it again"):
        dataset_import_resume(dataset=dataset)


def test_cancelled_archive_import_keeps_the_extraction_and_resumes_from_it(
    settings, tmp_path, monkeypatch
):
    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(indexing_service, "IMPORT_BATCH", 2)
    files = {f"photos/{i}.png": _png((i * 40, 0, 0)) for i in range(5)}
    dataset = dataset_create_from_archive(name="zip", archive=_zip_upload(files), queue=False)

    def progress(done, total):
        dataset_import_cancel(dataset=dataset)

    dataset = dataset_import(dataset_id=dataset.pk, progress=progress)
    assert dataset.state == Dataset.State.CANCELLED
    assert not list((tmp_path / "media" / "archives").iterdir())  # the upload is gone
    assert (tmp_path / "media" / "datasets" / str(dataset.pk) / "photos" / "4.png").exists()

    dataset_import_resume(dataset=dataset)
    dataset = dataset_import(dataset_id=dataset.pk)
    assert dataset.state == Dataset.State.READY
    assert dataset.images.filter(status=Image.Status.OK).count() == 5


def test_cancelling_a_pending_archive_import_deletes_the_upload(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    dataset = dataset_create_from_archive(
        name="pending", archive=_zip_upload({"a.png": _png()}), queue=False
    )
    dataset_import_cancel(dataset=dataset)
    assert not list((tmp_path / "media" / "archives").iterdir())
    with pytest.raises(StateConflict, match="upload it again"):
        dataset_import_resume(dataset=dataset)


# --- Prompt jobs ---------------------------------------------------------------------------


def _zero_shot_job(django_capture_on_commit_callbacks) -> PromptJob:
    from curation.services.clip_config import configured_model_key

    with django_capture_on_commit_callbacks():
        return prompt_job_create_zero_shot(
            model_key=configured_model_key(), appropriate=["a calm photo"],
            inappropriate=["a violent photo"], name="zs",
        )  # fmt: skip


def test_prompt_job_cancel_resume_and_conflicts(
    tiny_model_settings, django_capture_on_commit_callbacks
):
    from curation.services.clip_runtime import get_clip

    job = _zero_shot_job(django_capture_on_commit_callbacks)
    assert prompt_job_cancel(job=job).state == PromptJob.State.CANCELLED
    assert prompt_job_cancel(job=job).state == PromptJob.State.CANCELLED
    assert prompt_job_run(job_id=job.pk, clip_provider=get_clip).state == "cancelled"

    with django_capture_on_commit_callbacks() as callbacks:
        assert prompt_job_resume(job=job).state == PromptJob.State.PENDING
    assert len(callbacks) == 1
    job = prompt_job_run(job_id=job.pk, clip_provider=get_clip)
    assert job.state == PromptJob.State.SUCCEEDED and job.result_id

    with pytest.raises(StateConflict, match="only a cancelled or failed job can be resumed"):
        prompt_job_resume(job=job)
    with pytest.raises(StateConflict, match="only a pending or running job can be cancelled"):
        prompt_job_cancel(job=job)


def test_prompt_job_cancelled_while_it_runs_drops_its_version(
    tiny_model_settings, django_capture_on_commit_callbacks, monkeypatch
):
    from curation.services.clip_runtime import get_clip

    job = _zero_shot_job(django_capture_on_commit_callbacks)
    real = prompts_service.prompt_version_create_zero_shot
    before = PromptVersion.objects.count()

    def cancel_meanwhile(**kwargs):
        version = real(**kwargs)
        prompt_job_cancel(job=job)
        return version

    monkeypatch.setattr(prompts_service, "prompt_version_create_zero_shot", cancel_meanwhile)
    job = prompt_job_run(job_id=job.pk, clip_provider=get_clip)
    assert job.state == PromptJob.State.CANCELLED and job.result_id is None
    assert PromptVersion.objects.count() == before


# --- With a real worker --------------------------------------------------------------------


@pytest.mark.celery
@pytest.mark.django_db(transaction=True)
def test_cancel_while_a_worker_holds_chunks_then_resume_completes_exactly_once(
    workers, tiny_model_settings, tmp_path
):
    from curation.services.clip_config import configured_model_key
    from curation.services.clip_runtime import get_clip
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot

    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 150, seed=7)
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="live", folder=str(folder), queue=False).pk
    )
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
    worker = workers.start("cancel")
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=8)
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).chunks_done >= 2,
        interval=0.02,
        what="two chunks",
        log=worker.log_path,
    )
    cancelled = scoring_run_cancel(run=run)
    assert cancelled.chunks_done < cancelled.chunks_total, "finished before the cancel"
    # The chunk the worker held, and the queued ones, must not move the cancelled run.
    time.sleep(3)
    run.refresh_from_db()
    assert run.state == ScoringRun.State.CANCELLED
    assert run.chunks_done == cancelled.chunks_done
    done = ScoringChunk.objects.filter(run=run, state=ScoringChunk.State.DONE).count()
    assert done == run.chunks_done
    done_images = sum(
        Image.objects.filter(
            dataset=dataset, status=Image.Status.OK, id__gte=c.first_image_id,
            id__lte=c.last_image_id,
        ).count()
        for c in ScoringChunk.objects.filter(run=run, state=ScoringChunk.State.DONE)
    )  # fmt: skip
    assert Score.objects.filter(run=run).count() == done_images == run.processed

    scoring_run_resume(run=run)
    wait_for(
        lambda: ScoringRun.objects.get(pk=run.pk).state == ScoringRun.State.SUCCEEDED,
        timeout=180,
        what="the resumed run",
        log=worker.log_path,
    )
    run.refresh_from_db()
    ok = Image.objects.filter(dataset=dataset, status=Image.Status.OK).count()
    assert run.chunks_done == run.chunks_total and run.processed == run.total == ok
    assert Score.objects.filter(run=run).count() == ok


def test_manage_work_command(scored_setup, django_capture_on_commit_callbacks):
    from django.core.management import CommandError, call_command

    dataset, version = scored_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=0.5, chunk_size=6, queue=False
    )
    out = io.StringIO()
    call_command("manage_work", "cancel", "run", str(run.pk), stdout=out)
    assert f"Run {run.pk}: cancelled" in out.getvalue()
    with django_capture_on_commit_callbacks():
        call_command("manage_work", "resume", "run", str(run.pk), stdout=out)
    with pytest.raises(CommandError, match="only a cancelled or failed import can be resumed"):
        call_command("manage_work", "resume", "import", dataset.name)
    with pytest.raises(CommandError, match="No run with id"):
        call_command("manage_work", "cancel", "run", "99999999")
    call_command("manage_work", "recover", stdout=out)
    assert "No stalled work." in out.getvalue()
