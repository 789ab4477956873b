"""Bank creation (atomic, audited) and matching across datasets: exact, pHash, PDQ."""

from __future__ import annotations

import pytest
from django.test import override_settings

from audit.models import AuditEvent
from curation.bank_models import BankMatch, HashBank, HashBankEntry
from curation.bank_selectors import bank_matches_by_image, dataset_bank_matched_count
from curation.errors import StateConflict, ValidationFailed
from curation.services.bank_files import BankFileError
from curation.services.banks import (
    bank_create,
    bank_delete,
    bank_entries_replace,
    bank_match_all_datasets,
    bank_match_dataset,
)
from tests.banks.conftest import export_csv, image

pytestmark = pytest.mark.django_db


def matched(dataset) -> dict[str, tuple[str, int]]:
    return {
        m.image.relative_path: (m.kind, m.distance)
        for m in BankMatch.objects.filter(dataset=dataset).select_related("image")
    }


def test_the_test_images_have_usable_pdq_hashes(two_datasets):
    source, other = two_datasets
    for dataset in (source, other):
        for img in dataset.images.all():
            assert len(img.pdq) == 64 and img.pdq_quality >= 50, img.relative_path


def test_a_bank_from_one_datasets_export_matches_copies_in_another(two_datasets, admin_user):
    source, other = two_datasets
    originals = [image(source, "original-0.png"), image(source, "original-1.png")]
    bank, parsed = bank_create(
        name="known bad", data=export_csv(originals), file_name="export-1.csv", actor=admin_user
    )
    assert parsed.counts() == {"sha256": 2, "phash": 2, "pdq": 2}
    assert bank_match_all_datasets(bank_id=bank.pk) == 4  # two in each dataset
    found = matched(other)
    assert set(found) == {"copy-of-0.jpg", "exact-1.png"}  # the unrelated image is not
    assert found["exact-1.png"] == ("sha256", 0)
    # A different file (so no SHA-256 match): found by a perceptual hash.
    assert image(other, "copy-of-0.jpg").sha256 != originals[0].sha256
    assert found["copy-of-0.jpg"][0] in ("pdq", "phash")
    assert bank_matches_by_image(dataset=other) == {
        image(other, "copy-of-0.jpg").pk: ["known bad"],
        image(other, "exact-1.png").pk: ["known bad"],
    }
    assert dataset_bank_matched_count(dataset=source) == 2
    bank.refresh_from_db()
    assert bank.matched_at is not None


@pytest.mark.parametrize("kind", ["pdq", "phash"])
def test_each_perceptual_hash_alone_matches_the_edited_copy_and_not_the_unrelated_image(
    two_datasets, kind
):
    source, other = two_datasets
    value = getattr(image(source, "original-0.png"), kind)
    bank, _ = bank_create(name=f"{kind} only", data=f"{value}\n".encode(), kind=kind)
    bank_match_all_datasets(bank_id=bank.pk)
    found = matched(other)
    assert set(found) == {"copy-of-0.jpg"}
    assert found["copy-of-0.jpg"][0] == kind


def test_distances_are_the_configured_ones(two_datasets, settings):
    source, other = two_datasets
    copy = image(other, "copy-of-0.jpg")
    value = image(source, "original-0.png").pdq
    distance = (int(value, 16) ^ int(copy.pdq, 16)).bit_count()
    assert 0 < distance <= 31
    bank, _ = bank_create(name="pdq", data=f"{value}\n".encode(), kind="pdq")
    settings.Q16_BANK_PDQ_DISTANCE = distance - 1
    bank_match_dataset(dataset=other)
    assert matched(other) == {}
    settings.Q16_BANK_PDQ_DISTANCE = distance
    bank_match_dataset(dataset=other)
    assert matched(other) == {"copy-of-0.jpg": ("pdq", distance)}


def test_low_quality_pdq_hashes_are_not_matched(two_datasets, settings):
    source, other = two_datasets
    value = image(other, "unrelated.png").pdq
    bank, _ = bank_create(name="pdq", data=f"{value}\n".encode(), kind="pdq")
    settings.Q16_BANK_PDQ_MIN_QUALITY = 101  # no image is that good
    bank_match_dataset(dataset=other)
    assert matched(other) == {}
    settings.Q16_BANK_PDQ_MIN_QUALITY = 50
    bank_match_dataset(dataset=other)
    assert matched(other) == {"unrelated.png": ("pdq", 0)}


def test_a_bad_file_leaves_nothing_behind(two_datasets):
    source, _ = two_datasets
    good = export_csv([image(source, "original-0.png")]).decode()
    bad = good + "0123,ffff,x.png,0.5,unreviewed,v1,1,abc\r\n"
    with pytest.raises(BankFileError, match="line 3"):
        bank_create(name="half", data=bad.encode())
    assert not HashBank.objects.exists() and not HashBankEntry.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="hash_bank").exists()


def test_names_sizes_and_entry_counts_are_checked(settings):
    bank_create(name="one", data=b"f0e1d2c3b4a59687\n")
    with pytest.raises(StateConflict, match="exists already"):
        bank_create(name=" one ", data=b"0000ffff0000ffff\n")
    with pytest.raises(ValidationFailed, match="needs a name"):
        bank_create(name="  ", data=b"0000ffff0000ffff\n")
    settings.Q16_MAX_BANK_BYTES = 20
    with pytest.raises(ValidationFailed, match="Q16_MAX_BANK_BYTES"):
        bank_create(name="big", data=b"0000ffff0000ffff\n0000ffff0000fffe\n")
    settings.Q16_MAX_BANK_BYTES = 2**20
    settings.Q16_MAX_BANK_ENTRIES = 1
    with pytest.raises(ValidationFailed, match="at most 1"):
        bank_create(name="many", data=b"0000ffff0000ffff\n0000ffff0000fffe\n")
    assert list(HashBank.objects.values_list("name", flat=True)) == ["one"]


def test_create_replace_and_delete_are_audited(two_datasets, admin_user):
    source, other = two_datasets
    first = image(source, "original-1.png")
    bank, _ = bank_create(name="audited", data=f"{first.sha256}\n".encode(), kind="sha256",
                          file_name="list.txt", actor=admin_user)  # fmt: skip
    bank_match_all_datasets(bank_id=bank.pk)
    assert dataset_bank_matched_count(dataset=other) == 1
    created = AuditEvent.objects.get(action="hash_bank.create")
    assert created.actor == admin_user and created.target_id == bank.pk
    assert created.after["entries"] == {"sha256": 1, "phash": 0, "pdq": 0}

    # A new release without that hash: the matches it no longer supports go.
    second = image(source, "original-2.png")
    bank_entries_replace(bank=bank, data=f"{second.sha256}\n".encode(), kind="sha256",
                         actor=admin_user)  # fmt: skip
    bank_match_all_datasets(bank_id=bank.pk)
    assert dataset_bank_matched_count(dataset=other) == 0
    assert matched(source) == {"original-2.png": ("sha256", 0)}
    replaced = AuditEvent.objects.get(action="hash_bank.update")
    assert replaced.before["entries"]["sha256"] == 1

    bank_delete(bank=bank, actor=admin_user)
    assert not BankMatch.objects.exists() and not HashBankEntry.objects.exists()
    deleted = AuditEvent.objects.get(action="hash_bank.delete")
    assert deleted.actor == admin_user and deleted.before["matched_images"] == 1
    assert deleted.before["name"] == "audited"


def test_matching_without_banks_is_a_no_op(two_datasets, django_assert_max_num_queries):
    source, _ = two_datasets
    # Two existence checks and the one UPDATE that records the dataset as matched.
    with django_assert_max_num_queries(3):
        assert bank_match_dataset(dataset=source).matched_images == 0


@override_settings(Q16_BANK_PHASH_DISTANCE=0)
def test_exact_phash_entries_still_match_at_distance_zero(two_datasets):
    source, _ = two_datasets
    value = image(source, "original-3.png").phash
    bank, _ = bank_create(name="p", data=f"{value}\n".encode())
    bank_match_all_datasets(bank_id=bank.pk)
    assert matched(source) == {"original-3.png": ("phash", 0)}


def test_an_import_matches_against_the_banks_that_exist(
    tmp_path, django_capture_on_commit_callbacks
):
    from celery import current_app

    from tests.banks.conftest import import_folder, textured_image

    folder = tmp_path / "late"
    folder.mkdir()
    textured_image(7).save(folder / "known.png")
    textured_image(8).save(folder / "new.png")
    from hashlib import sha256

    known = sha256((folder / "known.png").read_bytes()).hexdigest()
    bank_create(name="earlier", data=f"{known}\n".encode(), kind="sha256")
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True  # the queued match runs here, through dispatch
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            dataset = import_folder("late", folder)  # no explicit matching call
        # Queued for after the import's transaction, not matched inside it.
        assert matched(dataset) == {}
        for callback in callbacks:
            callback()
    finally:
        current_app.conf.task_always_eager = eager
    assert matched(dataset) == {"known.png": ("sha256", 0)}
    dataset.refresh_from_db()
    assert dataset.banks_matched_at is not None


def test_creating_a_bank_queues_the_matching_of_every_dataset(
    two_datasets, django_capture_on_commit_callbacks
):
    from celery import current_app

    source, other = two_datasets
    value = image(source, "original-1.png").sha256
    eager = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True  # the task runs here, through dispatch
    try:
        with django_capture_on_commit_callbacks(execute=True):
            bank, _ = bank_create(name="queued", data=f"{value}\n".encode(), kind="sha256")
    finally:
        current_app.conf.task_always_eager = eager
    assert set(matched(source)) == {"original-1.png"} and set(matched(other)) == {"exact-1.png"}
    bank.refresh_from_db()
    assert bank.matched_at is not None and bank.match_error == ""


def test_an_export_counts_recorded_bank_matches_as_blocked(two_datasets, admin_user):
    from curation.services.exports import export_create
    from labels.exports import export_build

    source, other = two_datasets
    bank, _ = bank_create(
        name="shared bank", data=export_csv([image(source, "original-1.png")]), actor=admin_user
    )
    bank_match_all_datasets(bank_id=bank.pk)
    export = export_create(dataset=other, format="json", scope="confirmed", queue=False)
    export_build(export_id=export.pk)  # no mapping given: the recorded matches are read
    rows = {row["image_id"]: row for row in export_rows_of(export)}
    exact = image(other, "exact-1.png")
    assert set(rows) == {exact.pk}
    assert rows[exact.pk]["verdict"] == "matched" and rows[exact.pk]["banks"] == ["shared bank"]


def export_rows_of(export):
    import json

    from curation.models import Export
    from curation.storage import stored_open

    export = Export.objects.get(pk=export.pk)
    assert export.state == Export.State.SUCCEEDED, export.error
    with stored_open(export.file_path) as handle:
        return json.load(handle)["rows"]
