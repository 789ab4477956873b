"""The review page is a shell for static/js/review.js: it hands the script its API URLs and
renders the toolbar (queue, order, filters) from the query string."""

from __future__ import annotations

from django.urls import reverse


def test_review_page_hands_api_urls_to_the_script(client, reviewer_user):
    client.force_login(reviewer_user)
    html = client.get(reverse("review")).content.decode()
    assert f'data-next-url="{reverse("api-review-next")}"' in html
    assert f'data-batch-url="{reverse("api-review-batch")}"' in html
    assert f'data-bulk-url="{reverse("api-review-bulk-decision")}"' in html
    assert f'data-undo-url="{reverse("api-review-undo")}"' in html
    assert f'data-preferences-url="{reverse("api-review-preferences")}"' in html
    assert 'data-decision-url="/api/review/items/{id}/decision/"' in html
    assert 'data-release-url="/api/review/items/{id}/release/"' in html
    assert 'data-dataset=""' in html
    for hook in (
        'id="review-stage"',
        'id="review-image"',
        'id="review-status"',
        'id="review-empty"',
        'id="review-grid"',
        'id="review-help-keys"',
        'id="review-prefs"',
        'id="review-break"',
    ):
        assert hook in html
    assert 'class="review-stage is-blurred' in html
    assert "js/review.js" in html


def test_review_page_is_csp_ready(client, reviewer_user):
    client.force_login(reviewer_user)
    html = client.get(reverse("review")).content.decode()
    assert "<script>" not in html and " style=" not in html
    assert " onclick=" not in html and " onkeydown=" not in html


def test_review_page_limits_the_queue_to_a_dataset(client, reviewer_user, dataset):
    client.force_login(reviewer_user)
    response = client.get(reverse("review"), {"dataset": dataset.pk})
    assert f'data-dataset="{dataset.pk}"' in response.content.decode()
    assert response.context["queue_form"]["dataset"].value() == str(dataset.pk)


def test_unknown_dataset_falls_back_to_the_whole_queue(client, reviewer_user, db):
    client.force_login(reviewer_user)
    response = client.get(reverse("review"), {"dataset": "424242"})
    assert response.status_code == 200
    assert 'data-dataset=""' in response.content.decode()


def test_filters_from_the_query_string_fill_the_toolbar(client, reviewer_user, db):
    client.force_login(reviewer_user)
    response = client.get(
        reverse("review"),
        {"mode": "uncertain", "score_min": "0.6", "folder": "night", "category": "weapons"},
    )
    html = response.content.decode()
    assert '<option value="uncertain" selected>' in html
    assert 'name="score_min" min="0" max="1" step="0.01" placeholder="min" value="0.6"' in html
    assert 'value="night"' in html and 'value="weapons"' in html


def test_disagreement_queue_is_offered_to_admins_only(client, reviewer_user, admin_user, db):
    client.force_login(reviewer_user)
    html = client.get(reverse("review"), {"mode": "disagreement"}).content.decode()
    assert 'value="disagreement"' not in html
    assert '<option value="score" selected>' in html
    client.force_login(admin_user)
    html = client.get(reverse("review"), {"mode": "disagreement"}).content.decode()
    assert '<option value="disagreement" selected>' in html
