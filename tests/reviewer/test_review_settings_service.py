"""review_settings_update: the audit share, category renames that carry past verdicts along,
and the audit event of what changed."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from curation.errors import ValidationFailed
from reviewer.models import Decision, ReviewSettings
from reviewer.services.decisions import review_decision_record
from reviewer.services.settings import review_settings_update
from tests.reviewer.factories import item_of, make_dataset, make_version

pytestmark = pytest.mark.django_db


def settings_events(dataset) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action="review_settings.update", target_type="dataset", target_id=dataset.pk
        ).order_by("id")
    )


def confirm(image, user, category: str) -> Decision:
    return review_decision_record(
        item_id=item_of(image).pk, reviewer=user, verdict="inappropriate", category=category
    )


@pytest.mark.parametrize("share", [0.0, 0.05, 0.5])
def test_the_audit_share_is_saved(share):
    dataset, _, _ = make_dataset([0.9])
    assert review_settings_update(dataset=dataset, audit_share=share).audit_share == share
    assert ReviewSettings.objects.get(dataset=dataset).audit_share == share


@pytest.mark.parametrize("share", [-0.01, 0.51, 1.0, float("nan"), float("inf"), "lots", None])
def test_an_audit_share_outside_0_to_half_is_refused(share):
    dataset, _, _ = make_dataset([0.9])
    with pytest.raises(ValidationFailed, match="audit share"):
        review_settings_update(dataset=dataset, audit_share=share)
    assert not ReviewSettings.objects.filter(dataset=dataset, audit_share__gt=0).exists()
    assert settings_events(dataset) == []


def test_a_rename_relabels_the_datasets_past_verdicts_only(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8, 0.7])
    other, _, other_images = make_dataset([0.9])
    confirm(images[0], reviewer_user, "weapons")
    confirm(images[1], reviewer_user, "self-harm")
    confirm(other_images[0], reviewer_user, "weapons")
    rules = review_settings_update(
        dataset=dataset,
        categories=["arms", "self-harm", "other"],
        category_renames={"weapons": "arms"},
    )
    assert rules.categories == ["arms", "self-harm", "other"]
    assert Decision.objects.get(image=images[0]).category == "arms"
    assert Decision.objects.get(image=images[1]).category == "self-harm"
    # Another dataset's verdicts keep their own taxonomy.
    assert Decision.objects.get(image=other_images[0]).category == "weapons"
    (event,) = settings_events(dataset)
    assert event.before == {"categories": ReviewSettings().categories}
    assert event.after == {"categories": ["arms", "self-harm", "other"]}
    assert event.details["category_renames"] == {"weapons": "arms"}
    assert event.details["decisions_relabelled"] == 1
    # New verdicts use the new name; the old one is refused.
    confirm(images[2], reviewer_user, "arms")
    with pytest.raises(ValidationFailed, match="Unknown category"):
        review_decision_record(
            item_id=item_of(images[2]).pk, reviewer=reviewer_user, verdict="inappropriate",
            category="weapons",
        )  # fmt: skip


def test_two_categories_can_swap_names(reviewer_user):
    dataset, _, images = make_dataset([0.9, 0.8])
    review_settings_update(dataset=dataset, categories=["a", "b"])
    confirm(images[0], reviewer_user, "a")
    confirm(images[1], reviewer_user, "b")
    review_settings_update(
        dataset=dataset, categories=["b", "a"], category_renames={"a": "b", "b": "a"}
    )
    assert Decision.objects.get(image=images[0]).category == "b"
    assert Decision.objects.get(image=images[1]).category == "a"


def test_renames_without_a_list_rename_in_place(reviewer_user):
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, categories=["a", "b"])
    rules = review_settings_update(dataset=dataset, category_renames={"b": "c"})
    assert rules.categories == ["a", "c"]


@pytest.mark.parametrize(
    ("categories", "renames", "message"),
    [
        (["x", "b"], {"zzz": "x"}, "Not a category"),
        (["a"], {"b": "a"}, "merge"),
        (["c", "c2"], {"a": "c", "b": "c"}, "same name"),
        (["a", "b"], {"a": "c"}, "missing from the list"),
        (["a", "b", "c"], {"a": "c"}, "cannot stay"),
        (["a", "b"], ["a"], "map old names"),
    ],
)
def test_bad_renames_are_refused_and_change_nothing(reviewer_user, categories, renames, message):
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, categories=["a", "b"])
    confirm(images[0], reviewer_user, "a")
    with pytest.raises(ValidationFailed, match=message):
        review_settings_update(dataset=dataset, categories=categories, category_renames=renames)
    assert ReviewSettings.objects.get(dataset=dataset).categories == ["a", "b"]
    assert Decision.objects.get(image=images[0]).category == "a"


def test_a_removed_category_stays_on_its_verdicts(reviewer_user):
    dataset, _, images = make_dataset([0.9])
    review_settings_update(dataset=dataset, categories=["a", "b"])
    confirm(images[0], reviewer_user, "b")
    review_settings_update(dataset=dataset, categories=["a"])
    assert Decision.objects.get(image=images[0]).category == "b"


def test_the_audit_event_holds_the_changed_fields_and_the_actor(admin_user):
    version = make_version(name="v1", is_active=True)
    dataset, _, _ = make_dataset([0.9], version=version)
    review_settings_update(
        dataset=dataset, updated_by=admin_user, required_verdicts=2, near_duplicate_distance=6,
        audit_share=0.1, auto_retrain_every=50, pinned_version=version,
    )  # fmt: skip
    (event,) = settings_events(dataset)
    assert event.actor_id == admin_user.pk and event.actor_name == "admin"
    # near_duplicate_distance was already 6: not a change.
    assert event.before == {
        "required_verdicts": 1, "audit_share": 0.0, "auto_retrain_every": None,
        "pinned_version": None,
    }  # fmt: skip
    assert event.after == {
        "required_verdicts": 2, "audit_share": 0.1, "auto_retrain_every": 50,
        "pinned_version": version.pk,
    }  # fmt: skip
    # Saving the same values again changes nothing and records nothing.
    review_settings_update(
        dataset=dataset, updated_by=admin_user, required_verdicts=2, audit_share=0.1,
        auto_retrain_every=50, pinned_version=version,
    )  # fmt: skip
    assert len(settings_events(dataset)) == 1
    review_settings_update(dataset=dataset, updated_by=admin_user, auto_retrain_every=None)
    last = settings_events(dataset)[-1]
    assert (last.before, last.after) == ({"auto_retrain_every": 50}, {"auto_retrain_every": None})


def test_a_refused_change_records_no_event():
    dataset, _, _ = make_dataset([0.9])
    with pytest.raises(ValidationFailed):
        review_settings_update(
            dataset=dataset, required_verdicts=2, pinned_version=make_version("x/y")
        )
    assert settings_events(dataset) == []
    assert ReviewSettings.objects.get_or_create(dataset=dataset)[0].required_verdicts == 1
