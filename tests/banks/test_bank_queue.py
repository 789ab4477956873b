"""A matched image never reaches the review queue: a real scoring run with the tiny CLIP,
bank imports after scoring retire pending items (verdicts kept), deletion brings them back."""

from __future__ import annotations

import pytest

from curation.bank_models import BankMatch
from curation.models import DatasetAssignment, Image
from curation.services.banks import bank_create, bank_delete, bank_match_all_datasets
from curation.services.chunks import scoring_chunk_process
from curation.services.clip_config import configured_model_spec
from curation.services.clip_runtime import get_clip
from curation.services.datasets import dataset_create_from_folder, dataset_import
from curation.services.prompt_zero_shot import prompt_version_create_zero_shot
from curation.services.scoring import scoring_run_start
from reviewer.models import Decision, ReviewItem
from reviewer.services.decisions import review_decision_record
from reviewer.services.queue import QueueFilters, review_item_batch
from tests.engine.imagegen import make_two_kind_images

pytestmark = pytest.mark.django_db

# Every image is flagged at this threshold: any image without an item was kept out on purpose.
FLAG_ALL = 1e-9


@pytest.fixture
def scoring_setup(tiny_model_settings, tmp_path):
    folder = tmp_path / "imgs"
    make_two_kind_images(folder, 6, seed=3)
    dataset = dataset_import(
        dataset_id=dataset_create_from_folder(name="q", folder=str(folder), queue=False).pk
    )
    version = prompt_version_create_zero_shot(clip=get_clip(configured_model_spec().key))
    return dataset, version


def score(dataset, version):
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=FLAG_ALL, chunk_size=5, queue=False
    )
    for chunk in run.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    return run


def lease_everything(reviewer, dataset, **filters) -> set[int]:
    items = review_item_batch(
        reviewer=reviewer, limit=60, filters=QueueFilters(dataset=dataset, **filters)
    )
    return {item.image_id for item in items}


def test_images_matched_before_scoring_never_get_a_review_item(scoring_setup, admin_user):
    dataset, version = scoring_setup
    images = list(Image.objects.filter(dataset=dataset).order_by("id"))
    known = images[:3]
    bank_create(name="before", data="\n".join(i.sha256 for i in known).encode(), kind="sha256")
    # No task ran (nothing committed): scoring_run_start matches the dataset itself.
    assert not BankMatch.objects.exists()
    score(dataset, version)
    assert BankMatch.objects.filter(dataset=dataset).count() == 3
    with_items = set(ReviewItem.objects.values_list("image_id", flat=True))
    assert with_items == {i.pk for i in images[3:]}
    leased = lease_everything(admin_user, dataset)
    assert leased == {i.pk for i in images[3:]}
    # A rescore (chunk_scored again) does not bring them in either.
    score(dataset, version)
    assert not ReviewItem.objects.filter(image__in=known).exists()


def test_a_bank_after_scoring_retires_pending_items_and_keeps_verdicts(
    scoring_setup, admin_user, reviewer_user
):
    dataset, version = scoring_setup
    score(dataset, version)
    items = list(ReviewItem.objects.filter(dataset=dataset).order_by("image_id"))
    assert len(items) == 12 and all(i.state == ReviewItem.State.PENDING for i in items)
    decided, leased, untouched = items[0], items[1], items[2]
    review_decision_record(
        item_id=decided.pk, reviewer=admin_user, verdict=Decision.Verdict.INAPPROPRIATE
    )
    # A reviewer holds one of them when the bank arrives.
    DatasetAssignment.objects.create(dataset=dataset, user=reviewer_user)
    held = review_item_batch(reviewer=reviewer_user, limit=1, filters=QueueFilters(dataset=dataset))
    assert held
    leased = ReviewItem.objects.get(pk=held[0].pk)
    targets = [decided, leased, untouched]
    bank, _ = bank_create(
        name="after", data="\n".join(i.image.sha256 for i in targets).encode(), kind="sha256"
    )
    bank_match_all_datasets(bank_id=bank.pk)  # what the match_hash_bank task runs

    states = dict(
        ReviewItem.objects.filter(pk__in=[t.pk for t in targets]).values_list("pk", "state")
    )
    assert states[decided.pk] == ReviewItem.State.DECIDED
    assert states[leased.pk] == states[untouched.pk] == ReviewItem.State.WITHDRAWN
    assert ReviewItem.objects.get(pk=leased.pk).leased_by_id is None
    assert Decision.objects.filter(item=decided).count() == 1  # the verdict stays
    target_images = {t.image_id for t in targets}
    assert not lease_everything(admin_user, dataset) & target_images
    # Nor as a second look at decided items.
    assert decided.image_id not in lease_everything(
        reviewer_user, dataset, state=ReviewItem.State.DECIDED
    )

    # The bank goes: the images it alone matched wait for review again (still flagged).
    bank_delete(bank=bank, actor=admin_user)
    states = dict(
        ReviewItem.objects.filter(pk__in=[t.pk for t in targets]).values_list("pk", "state")
    )
    assert states[decided.pk] == ReviewItem.State.DECIDED
    assert states[leased.pk] == states[untouched.pk] == ReviewItem.State.PENDING


def test_the_audit_sample_never_draws_a_matched_image(scoring_setup, admin_user):
    from reviewer.services.queue import _audit_items_create

    dataset, version = scoring_setup
    run = scoring_run_start(
        dataset=dataset, prompt_version=version, threshold=1.0, chunk_size=50, queue=False
    )
    for chunk in run.chunks.all():
        scoring_chunk_process(chunk_id=chunk.pk, clip_provider=get_clip)
    images = list(Image.objects.filter(dataset=dataset).order_by("id"))
    known = images[:10]
    bank, _ = bank_create(
        name="audit", data="\n".join(i.sha256 for i in known).encode(), kind="sha256"
    )
    bank_match_all_datasets(bank_id=bank.pk)
    created = _audit_items_create(dataset=dataset, count=12)
    assert created == 2  # only the two unmatched images could be drawn
    assert set(ReviewItem.objects.values_list("image_id", flat=True)) == {i.pk for i in images[10:]}
