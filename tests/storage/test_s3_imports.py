"""Imports' own files through the storage backend (Q16_STORAGE=s3, the moto server of
tests/s3.py): an uploaded zip's extracted files and a URL list's downloads go to the bucket,
never to the web server's disk, and a worker whose disk is another empty folder indexes
and scores them by reading the bucket."""

from __future__ import annotations

import io
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage
from rest_framework.test import APIClient

from curation.models import Dataset, Image, ScoringRun
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_url_list,
    dataset_import,
)
from tests.helpers import wait_for
from tests.hostile.test_url_import import FETCHER


def _png(color, size=(64, 48)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


PICTURES = {f"/p{i}.png": _png((40 * i, 200 - 30 * i, 90)) for i in range(3)}


class _Pictures(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = PICTURES.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture
def picture_server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Pictures)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _zip() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("cats/a.png", _png((200, 30, 30)))
        archive.writestr("dogs/b.png", _png((30, 200, 30)))
        archive.writestr("notes.png", b"not an image")
        archive.writestr("../escape.png", _png((1, 2, 3)))
    return SimpleUploadedFile("up.zip", buffer.getvalue(), content_type="application/zip")


def _import_both(s3_storage, picture_server) -> tuple[Dataset, Dataset]:
    archive = dataset_import(
        dataset_id=dataset_create_from_archive(name="zip", archive=_zip(), queue=False).pk
    )
    urls = (
        "\n".join(f"{picture_server}{path}" for path in PICTURES) + f"\n{picture_server}/gone.png"
    )
    listed = dataset_create_from_url_list(name="urls", urls=urls, queue=False)
    listed = dataset_import(dataset_id=listed.pk, url_fetcher=FETCHER)
    return archive, listed


@pytest.mark.django_db
def test_zip_and_url_list_files_go_to_the_bucket(s3_storage, picture_server, settings, admin_user):
    archive, listed = _import_both(s3_storage, picture_server)
    assert archive.state == Dataset.State.READY, archive.error
    assert listed.state == Dataset.State.READY, listed.error
    prefix = f"{s3_storage.bucket.bucket}/{s3_storage.prefix}/media/datasets"
    assert archive.root_path == f"s3://{prefix}/{archive.pk}"
    ok = {i.relative_path for i in archive.images.filter(status=Image.Status.OK)}
    assert ok == {"cats/a.png", "dogs/b.png"}
    assert archive.images.get(relative_path="notes.png").status == Image.Status.FAILED
    assert archive.images.filter(relative_path__startswith="[refused]").count() == 1
    keys = s3_storage.keys(f"media/datasets/{archive.pk}")
    named = sorted(k.split(f"/{archive.pk}/", 1)[1] for k in keys)
    assert named == ["cats/a.png", "dogs/b.png", "notes.png"]  # extracted as on a local disk
    assert len(s3_storage.keys("media/archives")) == 1  # the upload, kept like a local one
    downloaded = listed.images.filter(status=Image.Status.OK)
    assert downloaded.count() == 3 and listed.failed == 1
    assert len(s3_storage.keys(f"media/datasets/{listed.pk}")) == 3
    assert len(s3_storage.keys("media/url-lists")) == 1
    assert not settings.MEDIA_ROOT.exists()  # nothing on the web server's disk
    # The web process serves an image it never had on disk, from the bucket.
    client = APIClient()
    client.force_login(admin_user)
    image = archive.images.get(relative_path="cats/a.png")
    response = client.get(f"/images/{image.pk}/file/")
    assert response.status_code == 200 and response.content == _png((200, 30, 30))


@pytest.mark.celery
def test_a_worker_on_another_disk_indexes_and_scores_them_through_the_bucket(
    workers, s3_storage, picture_server, settings, tmp_path, tiny_model_settings
):
    from curation.services.clip_config import configured_model_key
    from curation.services.clip_runtime import get_clip
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
    from curation.services.scoring import scoring_run_start

    # The worker's disk: an empty folder the web process never wrote to.
    elsewhere = tmp_path / "worker-disk"
    elsewhere.mkdir()
    worker = workers.start(
        "remote", MEDIA_ROOT=str(elsewhere / "media"), Q16_DATA_DIR=str(elsewhere),
        **s3_storage.worker_env(),
    )  # fmt: skip
    # The zip's extraction and indexing run on the worker, reading the upload from the bucket.
    queued = dataset_create_from_archive(name="zip", archive=_zip())
    archive = wait_for(
        lambda: Dataset.objects.filter(pk=queued.pk, state__in=["ready", "failed"]).first(),
        timeout=120, what="the zip import", log=worker.log_path,
    )  # fmt: skip
    assert archive.state == Dataset.State.READY, archive.error
    assert archive.images.filter(status=Image.Status.OK).count() == 2
    assert archive.import_chunks.get().worker.startswith("remote-")
    # The URL list was downloaded here (the test's fetcher allows its loopback server).
    urls = "\n".join(f"{picture_server}{path}" for path in PICTURES)
    listed = dataset_create_from_url_list(name="urls", urls=urls, queue=False)
    listed = dataset_import(dataset_id=listed.pk, url_fetcher=FETCHER)
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
    for dataset, images in ((archive, 2), (listed, 3)):
        run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5)
        done = wait_for(
            lambda run=run: ScoringRun.objects.filter(
                pk=run.pk, state__in=["succeeded", "failed"]
            ).first(),
            timeout=180, what=f"scoring {dataset.name}", log=worker.log_path,
        )  # fmt: skip
        assert done.state == ScoringRun.State.SUCCEEDED, done.error
        assert (done.processed, done.failed, done.encoded) == (images, 0, images)
    assert not settings.MEDIA_ROOT.exists()  # the web server's disk: untouched
    assert not (elsewhere / "media" / "datasets").exists()  # nor the worker's: the bucket only


@pytest.mark.celery
def test_a_worker_reads_a_webdataset_shard_from_the_bucket_and_writes_embedding_shards_there(
    workers, s3_storage, settings, tmp_path, tiny_model_settings
):
    from curation.models import EmbeddingShard
    from curation.services.clip_config import configured_model_key
    from curation.services.clip_runtime import get_clip
    from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
    from curation.services.scoring import scoring_run_start
    from curation.services.sources.create import dataset_create_from_webdataset
    from tests.sources.shards import sample_members, shard_bytes

    bucket = s3_storage.bucket
    bucket.put("shards/00000.tar", shard_bytes(sample_members("r1") + sample_members("r2")))
    allowed = f"s3://{bucket.bucket}/shards/"
    settings.Q16_IMPORT_URL_PREFIXES = [allowed]
    elsewhere = tmp_path / "worker-disk"
    worker = workers.start(
        "shards", MEDIA_ROOT=str(elsewhere / "media"), Q16_DATA_DIR=str(elsewhere),
        Q16_IMPORT_URL_PREFIXES=allowed, **s3_storage.worker_env(),
    )  # fmt: skip
    queued = dataset_create_from_webdataset(name="remote", shards=f"{allowed}00000.tar")
    dataset = wait_for(
        lambda: Dataset.objects.filter(pk=queued.pk, state__in=["ready", "failed"]).first(),
        timeout=120, what="the shard import", log=worker.log_path,
    )  # fmt: skip
    assert dataset.state == Dataset.State.READY, dataset.error
    assert dataset.images.filter(status=Image.Status.OK).count() == 2
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_key()))
    run = scoring_run_start(dataset=dataset, prompt_version=version, threshold=0.5)
    done = wait_for(
        lambda: ScoringRun.objects.filter(pk=run.pk, state__in=["succeeded", "failed"]).first(),
        timeout=180, what="scoring the shard", log=worker.log_path,
    )  # fmt: skip
    assert done.state == ScoringRun.State.SUCCEEDED, done.error
    assert (done.processed, done.encoded) == (2, 1)  # the two samples share one picture
    shard_paths = list(EmbeddingShard.objects.filter(run=run).values_list("path", flat=True))
    assert shard_paths and all(
        f"{s3_storage.prefix}/embeddings/{path}" in s3_storage.keys("embeddings")
        for path in shard_paths
    )
    assert not (elsewhere / "media" / "embeddings").exists()  # written through the bucket only
