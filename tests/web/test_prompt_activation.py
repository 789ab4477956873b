"""A trained version worse than its parent or the active version on the same held-out verdicts is
marked on the prompts page and in the API, and the page asks before activating it."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from curation.models import PromptVersion, ScoringRun
from curation.selectors import prompt_version_warning, prompt_version_worse_than

from .conftest import make_version


def _metrics(own: float, parent: float, active: float | None) -> dict:
    metrics = {
        "n_train": 80,
        "n_heldout": 20,
        "heldout": {"accuracy": own, "precision": 0.6, "recall": 0.6, "f1": 0.6},
        "parent_heldout": {"accuracy": parent, "precision": 0.7, "recall": 0.7, "f1": 0.7},
    }
    if active is not None:
        metrics["active_heldout"] = {"accuracy": active, "precision": 0.7, "recall": 0.7, "f1": 0.7}
    return metrics


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def worse(version, model_key) -> PromptVersion:
    return make_version(
        model_key, name="overfitted", source=PromptVersion.Source.TRAINED, parent=version,
        metrics=_metrics(0.65, 0.7, 0.75),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("own", "parent", "active", "expected"),
    [
        (0.65, 0.7, 0.75, ["parent", "active"]),
        (0.72, 0.7, 0.75, ["active"]),
        (0.65, 0.7, None, ["parent"]),
        (0.7, 0.7, 0.7, []),  # as good is not worse
        (0.9, 0.7, 0.75, []),
    ],
)
def test_worse_means_lower_heldout_accuracy_than_parent_or_active(
    db, model_key, own, parent, active, expected
):
    version = make_version(model_key, name="t", metrics=_metrics(own, parent, active))
    assert prompt_version_worse_than(version) == expected
    assert (prompt_version_warning(version) is None) == (not expected)


@pytest.mark.parametrize("metrics", [{}, {"heldout": "x"}, {"heldout": {"accuracy": True}}, []])
def test_versions_without_usable_metrics_are_never_worse(db, model_key, metrics):
    version = make_version(model_key, name="t", metrics=metrics)
    assert prompt_version_worse_than(version) == [] and prompt_version_warning(version) is None


def test_prompts_page_marks_the_worse_version_and_links_to_the_confirmation(admin_client, worse):
    html = admin_client.get(reverse("prompt-versions")).content.decode()
    row = html[html.index(f'id="version-{worse.pk}"') :]
    row = row[: row.index("</tr>\n", row.index("</table>"))]
    assert "badge-worse" in row and "worse than parent and active" in row
    assert "held-out accuracy 0.650" in row and "its parent (0.700)" in row
    assert f'href="{reverse("prompt-activate-confirm", args=[worse.pk])}"' in row
    # No one-click activation form for it.
    assert f'action="{reverse("prompt-activate", args=[worse.pk])}"' not in row


def test_confirmation_page_shows_the_comparison(admin_client, worse):
    response = admin_client.get(reverse("prompt-activate-confirm", args=[worse.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "This version did worse on held-out verdicts" in html
    assert "0.650" in html and "0.700" in html and "0.750" in html
    assert 'name="activate_anyway"' in html and "required" in html
    assert f'action="{reverse("prompt-activate", args=[worse.pk])}"' in html


def test_activating_a_worse_version_without_the_box_changes_nothing(admin_client, worse, version):
    response = admin_client.post(reverse("prompt-activate", args=[worse.pk]))
    assert response.status_code == 400
    assert "Tick “Activate anyway”" in response.content.decode()
    worse.refresh_from_db()
    version.refresh_from_db()
    assert not worse.is_active and version.is_active
    assert not ScoringRun.objects.filter(kind=ScoringRun.Kind.RESCORE).exists()


def test_activating_a_worse_version_anyway(admin_client, worse, version, dataset):
    ScoringRun.objects.create(
        dataset=dataset, prompt_version=version, model_key=version.model_key, threshold=0.6,
        state=ScoringRun.State.SUCCEEDED, total=2, processed=2,
    )  # fmt: skip
    response = admin_client.post(
        reverse("prompt-activate", args=[worse.pk]), {"activate_anyway": "1"}, follow=True
    )
    assert response.status_code == 200
    worse.refresh_from_db()
    assert worse.is_active
    assert ScoringRun.objects.get(kind=ScoringRun.Kind.RESCORE).prompt_version == worse
    assert "Activated “overfitted”" in response.content.decode()


def test_confirmation_of_a_version_that_is_not_worse_goes_back_to_the_list(
    admin_client, version, model_key
):
    better = make_version(model_key, name="better", metrics=_metrics(0.9, 0.7, 0.75))
    response = admin_client.get(reverse("prompt-activate-confirm", args=[better.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('prompt-versions')}#version-{better.pk}"
    assert admin_client.get(reverse("prompt-activate-confirm", args=[10**6])).status_code == 404


def test_api_marks_the_worse_version_and_warns_on_activation(admin_user, worse, version):
    api = APIClient()
    api.force_login(admin_user)
    body = api.get(reverse("api-prompt-version", args=[worse.pk])).json()
    assert body["worse_than"] == ["parent", "active"]
    assert "held-out accuracy 0.650" in body["warning"]
    assert api.get(reverse("api-prompt-version", args=[version.pk])).json()["worse_than"] == []
    listed = {row["id"]: row for row in api.get(reverse("api-prompt-versions")).json()}
    assert listed[worse.pk]["warning"] == body["warning"] and listed[version.pk]["warning"] is None
    # The API activates it (clients decide for themselves) and says why it is worse.
    response = api.post(reverse("api-prompt-version-activate", args=[worse.pk]))
    assert response.status_code == 200
    assert response.json()["warning"] == body["warning"]
    assert response.json()["version"]["is_active"] is True
    better = api.post(reverse("api-prompt-version-activate", args=[version.pk])).json()
    assert better["warning"] is None
