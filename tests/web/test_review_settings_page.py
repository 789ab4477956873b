"""The review settings page of a dataset: admins only; a valid form saves through
review_settings_update; bad input re-renders the page with the errors inline (4xx)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from curation.models import PromptPolicy, ScoringRun
from reviewer.models import Decision, ReviewItem, ReviewSettings

from .conftest import make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def scored(dataset, version):
    """The dataset scored (succeeded) with the active version."""
    return ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.5,
        state=ScoringRun.State.SUCCEEDED, total=2, processed=2,
    )  # fmt: skip


def url(dataset) -> str:
    return reverse("dataset-review-settings", args=[dataset.pk])


def form_data(categories=("weapons", "self-harm"), **overrides) -> dict:
    """A complete POST: the settings and one formset row per category (original = name)."""
    data = {
        "required_verdicts": "1",
        "near_duplicate_distance": "6",
        "audit_share_percent": "0",
        "learn_uncertain_percent": "50",
        "auto_retrain_every": "",
        "pinned_version": "",
        "category-TOTAL_FORMS": str(len(categories)),
        "category-INITIAL_FORMS": str(len(categories)),
        "category-MIN_NUM_FORMS": "0",
        "category-MAX_NUM_FORMS": "30",
    }
    for index, name in enumerate(categories):
        data[f"category-{index}-original"] = name
        data[f"category-{index}-name"] = name
        data[f"category-{index}-ORDER"] = str(index + 1)
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def with_categories(dataset, names):
    ReviewSettings.objects.update_or_create(dataset=dataset, defaults={"categories": list(names)})


def test_the_page_shows_the_current_settings(admin_client, dataset, scored, version):
    with_categories(dataset, ["weapons", "self-harm"])
    PromptPolicy.objects.create(dataset=dataset, auto_retrain_every=40, pinned_version=version)
    page = admin_client.get(url(dataset))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="required_verdicts"' in html and 'value="1"' in html
    assert 'value="weapons"' in html and 'value="self-harm"' in html
    assert 'id="id_auto_retrain" checked' in html
    assert 'value="40"' in html
    assert f'<option value="{version.pk}" selected>' in html
    # Linked from the dataset page and its statistics page.
    for name in ("dataset-detail", "dataset-stats"):
        assert url(dataset) in admin_client.get(reverse(name, args=[dataset.pk])).content.decode()


def test_others_may_not_see_or_change_it(client, reviewer_user, dataset):
    assert client.get(url(dataset)).status_code == 302
    client.force_login(reviewer_user)
    assert client.get(url(dataset)).status_code == 403
    assert client.post(url(dataset), form_data(required_verdicts="3")).status_code == 403
    assert not ReviewSettings.objects.filter(dataset=dataset, required_verdicts=3).exists()


def test_an_unknown_dataset_is_404(admin_client):
    assert admin_client.get(reverse("dataset-review-settings", args=[987654])).status_code == 404


def test_saving_every_setting(admin_client, admin_user, dataset, scored, version, reviewer_user):
    with_categories(dataset, ["weapons", "self-harm", "other"])
    item = ReviewItem.objects.create(dataset=dataset, image=dataset.images.first(), score=0.9)
    Decision.objects.create(
        item=item, image=item.image, reviewer=reviewer_user, verdict="inappropriate",
        category="weapons",
    )  # fmt: skip
    data = form_data(
        categories=("weapons", "self-harm", "other"),
        required_verdicts="3",
        near_duplicate_distance="10",
        audit_share_percent="12.5",
        auto_retrain="on",
        auto_retrain_every="25",
        pinned_version=str(version.pk),
    )
    # Rename "weapons", move "other" first, remove "self-harm", add "hate" last.
    data.update({
        "category-0-name": "arms", "category-0-ORDER": "2",
        "category-1-DELETE": "on",
        "category-2-ORDER": "1",
        "category-TOTAL_FORMS": "4",
        "category-3-original": "", "category-3-name": "hate", "category-3-ORDER": "3",
    })  # fmt: skip
    response = admin_client.post(url(dataset), data)
    assert response.status_code == 302 and response["Location"] == url(dataset)
    rules = ReviewSettings.objects.get(dataset=dataset)
    assert rules.required_verdicts == 3 and rules.near_duplicate_distance == 10
    assert rules.audit_share == pytest.approx(0.125)
    assert rules.categories == ["other", "arms", "hate"]
    assert rules.auto_retrain_every == 25 and rules.pinned_version_id == version.pk
    assert Decision.objects.get(pk=item.decisions.get().pk).category == "arms"
    event = AuditEvent.objects.get(action="review_settings.update", target_id=dataset.pk)
    assert event.actor_id == admin_user.pk
    assert event.after["categories"] == ["other", "arms", "hate"]
    assert event.details["category_renames"] == {"weapons": "arms"}
    page = admin_client.get(url(dataset)).content.decode()
    assert "Review settings saved." in page
    # Turning retraining off and unpinning.
    response = admin_client.post(url(dataset), form_data(categories=rules.categories))
    assert response.status_code == 302
    policy = PromptPolicy.objects.get(dataset=dataset)
    assert policy.auto_retrain_every is None and policy.pinned_version_id is None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"required_verdicts": "0"}, "greater than or equal to 1"),
        ({"required_verdicts": "11"}, "less than or equal to 10"),
        ({"required_verdicts": "two"}, "Enter a whole number"),
        ({"required_verdicts": None}, "This field is required"),
        ({"near_duplicate_distance": "33"}, "less than or equal to 32"),
        ({"audit_share_percent": "50.5"}, "less than or equal to 50"),
        ({"audit_share_percent": "-1"}, "greater than or equal to 0"),
        ({"audit_share_percent": "NaN"}, "Enter a number"),
        ({"auto_retrain": "on"}, "after how many verdicts"),
        ({"auto_retrain": "on", "auto_retrain_every": "0"}, "greater than or equal to 1"),
        ({"pinned_version": "99999999"}, "Select a valid choice"),
        ({"pinned_version": "1" * 30}, "Select a valid choice"),
        ({"category-1-name": "weapons"}, "Each name once: weapons"),
        ({"category-0-DELETE": "on", "category-1-DELETE": "on"}, "Keep at least one category"),
        ({"category-0-name": ""}, "or tick Remove"),
        ({"category-0-name": "x" * 101}, "at most 100 characters"),
        ({"category-0-ORDER": "first"}, "Enter a whole number"),
        ({"category-TOTAL_FORMS": None}, "ManagementForm data is missing"),
        ({"category-TOTAL_FORMS": "500"}, "Please submit at most 30 forms"),
    ],
)
def test_bad_input_is_shown_inline_and_saves_nothing(admin_client, dataset, overrides, message):
    with_categories(dataset, ["weapons", "self-harm"])
    data = form_data(required_verdicts="2") | overrides
    response = admin_client.post(url(dataset), {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html.replace("&#x27;", "'")
    # The page keeps what was typed.
    assert 'name="required_verdicts"' in html
    rules = ReviewSettings.objects.get(dataset=dataset)
    assert rules.required_verdicts == 1 and rules.categories == ["weapons", "self-harm"]
    assert not AuditEvent.objects.filter(action="review_settings.update").exists()


def test_a_pin_of_another_models_version_is_refused_inline(admin_client, dataset, scored):
    other = make_version("other/model", name="other model's")
    # The choice list only offers the dataset's model; a forged id is an invalid choice.
    response = admin_client.post(url(dataset), form_data(pinned_version=str(other.pk)))
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


def test_a_forged_rename_is_refused_by_the_service(admin_client, dataset):
    with_categories(dataset, ["weapons", "self-harm"])
    response = admin_client.post(
        url(dataset), form_data() | {"category-0-original": "not-a-category"}
    )
    assert response.status_code == 400
    assert "Not a category of this dataset: not-a-category" in response.content.decode()
    assert ReviewSettings.objects.get(dataset=dataset).categories == ["weapons", "self-harm"]


def test_pinning_while_a_run_is_in_progress_is_a_conflict(admin_client, dataset, scored, model_key):
    second = make_version(model_key, name="second")
    ScoringRun.objects.create(
        dataset=dataset, prompt_version=scored.prompt_version, model_key=model_key,
        threshold=0.5, state=ScoringRun.State.RUNNING, total=2,
    )  # fmt: skip
    response = admin_client.post(url(dataset), form_data(pinned_version=str(second.pk)))
    assert response.status_code == 409
    assert "scoring run in progress" in response.content.decode()
    assert not PromptPolicy.objects.filter(dataset=dataset, pinned_version=second).exists()


def test_the_page_has_no_inline_script_or_style(admin_client, dataset):
    html = admin_client.get(url(dataset)).content.decode()
    bad = admin_client.post(url(dataset), form_data(required_verdicts="0")).content.decode()
    for page in (html, bad):
        assert "<style" not in page and " style=" not in page and "onclick=" not in page
        for chunk in page.split("<script")[1:]:
            assert chunk.split(">", 1)[0].strip().startswith("src=")
