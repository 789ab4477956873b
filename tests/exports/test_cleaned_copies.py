"""Cleaned copies hold exactly the kept images: WebDataset shards (opened with the webdataset
library: same keys, same sidecar bytes), ImageFolder trees (copied, hard-linked, symlinked;
class folders kept), filtered URL tables (same columns, CSV and Parquet), and a bucket target;
targets outside the export folders, non-empty folders and links to a bucket are refused."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import webdataset as wds

from curation.errors import ValidationFailed
from curation.models import Dataset, Export, Image, Score, ScoringRun
from curation.services.datasets import dataset_create_from_folder, dataset_import
from curation.services.exports import export_create
from curation.services.sources.create import dataset_create_from_webdataset
from labels.exports import export_build
from labels.exports.cleaned import PROVENANCE_NAME
from reviewer.services.decisions import review_decision_record
from reviewer.services.items import review_items_sync
from tests.hostile import files
from tests.reviewer.factories import item_of, make_version
from tests.sources.shards import sample_members, write_shard

pytestmark = pytest.mark.django_db


@pytest.fixture
def export_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    root = tmp_path / "cleaned"
    root.mkdir()
    settings.Q16_EXPORT_ROOTS = [str(root)]
    return root


def score_and_confirm(dataset: Dataset, admin_user, *, blocked: set[str], key) -> None:
    """Score every image (0.9 for the blocked ones, 0.1 otherwise); confirm the blocked."""
    version = make_version()
    run = ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key,
        threshold=0.5, state=ScoringRun.State.SUCCEEDED,
    )  # fmt: skip
    images = list(dataset.images.filter(status=Image.Status.OK))
    scores = {image.pk: 0.9 if key(image) in blocked else 0.1 for image in images}
    Score.objects.bulk_create(
        Score(run=run, image_id=i, p_inappropriate=p) for i, p in scores.items()
    )
    review_items_sync(run=run, scores=scores)
    for image in images:
        if key(image) in blocked:
            review_decision_record(item_id=item_of(image).pk, reviewer=admin_user,
                                   verdict="inappropriate", category="weapons")  # fmt: skip


def build_copy(dataset, **options) -> Export:
    export = export_create(dataset=dataset, format="csv", scope="keep", queue=False, **options)
    return export_build(export_id=export.pk)


def webdataset_of(tmp_path) -> Dataset:
    folder = tmp_path / "wds"

    def sample(n: int, **kwargs) -> list:  # distinct images (identical ones share verdicts)
        return sample_members(f"s{n}", color=(30 * n, 255 - 30 * n, 90), **kwargs)

    write_shard(folder / "00000.tar", sample(1) + sample(2, caption="two") + sample(3))
    write_shard(folder / "00001.tar", sample(4) + sample(5))
    write_shard(folder / "00002.tar", sample(6))
    # A sample whose image is corrupt: it fails to index and is in no list and no copy.
    write_shard(folder / "00003.tar", [("bad.jpg", b"not a jpeg"), ("bad.txt", b"x")] + sample(7))
    dataset = dataset_create_from_webdataset(
        name="wds", shards=f"{folder}/{{00000..00003}}.tar", queue=False
    )
    return dataset_import(dataset_id=dataset.pk)


def test_webdataset_copy_holds_exactly_the_kept_samples_with_their_sidecars(
    tmp_path, export_root, admin_user
):
    dataset = webdataset_of(tmp_path)
    assert dataset.images.filter(status=Image.Status.FAILED).count() == 1
    blocked = {"s2", "s6"}
    score_and_confirm(dataset, admin_user, blocked=blocked, key=lambda i: i.sample_key)
    target = export_root / "wds-clean"
    export = build_copy(dataset, copy_kind="webdataset", copy_target=str(target))
    assert export.state == Export.State.SUCCEEDED, export.error
    shards = sorted(p.name for p in target.glob("*.tar"))
    assert shards == ["00000.tar", "00001.tar", "00003.tar"]  # 00002 held only a blocked sample
    samples = list(wds.WebDataset([str(target / name) for name in shards], shardshuffle=False))
    assert [s["__key__"] for s in samples] == ["s1", "s3", "s4", "s5", "s7"]
    originals = {
        s["__key__"]: s
        for s in wds.WebDataset(sorted(str(p) for p in (tmp_path / "wds").glob("*.tar")),
                                shardshuffle=False)
    }  # fmt: skip
    for sample in samples:
        original = originals[sample["__key__"]]
        for ext in ("jpg", "json", "txt"):
            assert sample[ext] == original[ext]
    kept_keys = {row["sample_key"] for row in csv.DictReader(io.StringIO(
        Path(export.file_path).read_text()))}  # fmt: skip
    assert kept_keys == {s["__key__"] for s in samples}
    provenance = json.loads((target / PROVENANCE_NAME).read_text())
    assert provenance["cleaned_copy"]["samples"] == 5
    assert provenance["counts"]["not_indexed"] == 1


@pytest.fixture
def image_folder(tmp_path) -> Path:
    folder = tmp_path / "imagenet"
    for cls, names in {"revolver": ["a", "b"], "guillotine": ["c"], "cat": ["d", "e"]}.items():
        (folder / cls).mkdir(parents=True)
        for index, name in enumerate(names):
            color = (10 * index + len(cls), 40, 200 - ord(name))
            (folder / cls / f"{name}.png").write_bytes(files.png(color=color))
    return folder


@pytest.mark.parametrize("mode", ["copy", "hardlink", "symlink"])
def test_imagefolder_copy_keeps_class_folders_and_only_kept_files(
    image_folder, export_root, admin_user, mode
):
    dataset = dataset_create_from_folder(
        name=f"inet-{mode}", folder=str(image_folder), class_folders=True, queue=False
    )
    dataset = dataset_import(dataset_id=dataset.pk)
    blocked = {"revolver/a.png", "guillotine/c.png"}
    score_and_confirm(dataset, admin_user, blocked=blocked, key=lambda i: i.relative_path)
    target = export_root / f"clean-{mode}"
    export = build_copy(dataset, copy_kind="imagefolder", copy_target=str(target), copy_mode=mode)
    assert export.state == Export.State.SUCCEEDED, export.error
    written = sorted(str(p.relative_to(target)) for p in target.rglob("*.png"))
    assert written == ["cat/d.png", "cat/e.png", "revolver/b.png"]
    for name in written:
        copy, source = target / name, image_folder / name
        assert copy.read_bytes() == source.read_bytes()
        if mode == "symlink":
            assert copy.is_symlink() and copy.resolve() == source.resolve()
        elif mode == "hardlink":
            assert os.stat(copy).st_ino == os.stat(source).st_ino
        else:
            assert not copy.is_symlink() and os.stat(copy).st_ino != os.stat(source).st_ino
    assert (target / PROVENANCE_NAME).is_file()


def table_dataset(tmp_path, table_format: str) -> tuple[Dataset, list[str]]:
    """A URL-table dataset as an import leaves it: the stored table and one image per URL."""
    urls = [f"https://example.org/{n}.jpg" for n in range(5)]
    columns = {"key": [f"k{n}" for n in range(5)], "url": urls,
               "caption": ["=1+1", "b", "c", "d", "e"], "width": [1, 2, 3, 4, 5]}  # fmt: skip
    path = tmp_path / f"table.{table_format}"
    if table_format == "parquet":
        pq.write_table(pa.table(columns), path)
    else:
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values(), strict=True))
    dataset = Dataset.objects.create(
        name=f"table-{table_format}", source_kind=Dataset.SourceKind.TABLE, source=str(path),
        source_name=path.name, root_path=str(tmp_path / "downloads"), state=Dataset.State.READY,
        options={"url_column": "url", "table_format": table_format},
    )  # fmt: skip
    for n, url in enumerate(urls):
        Image.objects.create(dataset=dataset, relative_path=f"{n}.jpg", source_url=url,
                             sha256=f"{n:064x}", sample_key=f"k{n}",
                             status=Image.Status.FAILED if n == 4 else Image.Status.OK)  # fmt: skip
    return dataset, urls


@pytest.mark.parametrize("table_format", ["csv", "parquet"])
def test_url_table_copy_keeps_the_source_columns_and_only_kept_rows(
    tmp_path, export_root, admin_user, table_format
):
    dataset, urls = table_dataset(tmp_path, table_format)
    score_and_confirm(dataset, admin_user, blocked={urls[1]}, key=lambda i: i.source_url)
    target = export_root / "table-clean"
    export = build_copy(dataset, copy_kind="table", copy_target=str(target))
    assert export.state == Export.State.SUCCEEDED, export.error
    written = target / f"table.{table_format}"
    if table_format == "parquet":
        table = pq.read_table(written)
        source = pq.read_table(tmp_path / "table.parquet")
        assert table.schema.equals(source.schema)
        rows = table.to_pylist()
    else:
        rows = list(csv.DictReader(written.open(newline="")))
        assert list(rows[0]) == ["key", "url", "caption", "width"]
    # urls[1] blocked; urls[4] failed to download: neither is in the cleaned table.
    assert [row["url"] for row in rows] == [urls[0], urls[2], urls[3]]
    assert rows[0]["caption"] == "=1+1"  # training data: copied as it is


def test_cleaned_copy_to_a_bucket(image_folder, export_root, admin_user, s3, settings):
    settings.Q16_EXPORT_URL_PREFIXES = [f"s3://{s3.bucket}/cleaned/"]
    dataset = dataset_import(dataset_id=dataset_create_from_folder(
        name="inet-s3", folder=str(image_folder), class_folders=True, queue=False).pk)  # fmt: skip
    score_and_confirm(dataset, admin_user, blocked={"cat/d.png"}, key=lambda i: i.relative_path)
    export = build_copy(dataset, copy_kind="imagefolder",
                        copy_target=f"s3://{s3.bucket}/cleaned/run-1/")  # fmt: skip
    assert export.state == Export.State.SUCCEEDED, export.error
    assert s3.keys("cleaned/") == [
        f"cleaned/run-1/{name}"
        for name in ["cat/e.png", "guillotine/c.png", PROVENANCE_NAME, "revolver/a.png",
                     "revolver/b.png"]
    ]  # fmt: skip
    assert s3.read("cleaned/run-1/cat/e.png") == (image_folder / "cat/e.png").read_bytes()


def test_bad_targets_are_refused(image_folder, export_root, tmp_path, settings):
    settings.Q16_EXPORT_URL_PREFIXES = ["s3://allowed/cleaned/"]
    dataset = dataset_create_from_folder(name="t", folder=str(image_folder), queue=False)
    (export_root / "full").mkdir()
    (export_root / "full" / "x").write_text("x")
    cases = [
        (str(tmp_path / "elsewhere"), "copy", "not inside an export folder"),
        (str(export_root), "copy", "not inside an export folder"),  # the root itself
        (str(export_root / ".." / "escape"), "copy", "not inside an export folder"),
        ("relative/path", "copy", "absolute path"),
        (str(export_root / "full"), "copy", "not an empty folder"),
        ("s3://other/cleaned/x", "copy", "not under an allowed export URL prefix"),
        ("s3://allowed/cleaned/../up", "copy", "may not contain"),
        ("s3://allowed/cleaned/x", "symlink", "Links are made only"),
        (str(export_root / "ok\x00"), "copy", "not a usable path"),
    ]
    for target, mode, message in cases:
        with pytest.raises(ValidationFailed, match=message):
            export_create(dataset=dataset, format="csv", scope="keep", copy_kind="imagefolder",
                          copy_target=target, copy_mode=mode, queue=False)  # fmt: skip
    settings.Q16_EXPORT_ROOTS = [str(image_folder.parent)]
    with pytest.raises(ValidationFailed, match="inside the dataset"):
        export_create(dataset=dataset, format="csv", scope="keep", copy_kind="imagefolder",
                      copy_target=str(image_folder / "clean"), queue=False)  # fmt: skip
    assert not Export.objects.exists()


def test_a_missing_source_file_fails_the_export_with_the_reason(
    image_folder, export_root, admin_user
):
    dataset = dataset_import(dataset_id=dataset_create_from_folder(
        name="gone", folder=str(image_folder), queue=False).pk)  # fmt: skip
    (image_folder / "cat" / "e.png").unlink()
    export = build_copy(dataset, copy_kind="imagefolder", copy_target=str(export_root / "g"))
    assert export.state == Export.State.FAILED
    assert "image file missing: cat/e.png" in export.error
