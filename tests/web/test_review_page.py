"""The review page is a shell for static/js/review.js: it hands the script its API URLs."""

from __future__ import annotations

from django.urls import reverse


def test_review_page_hands_api_urls_to_the_script(client, reviewer_user):
    client.force_login(reviewer_user)
    html = client.get(reverse("review")).content.decode()
    assert f'data-next-url="{reverse("api-review-next")}"' in html
    assert 'data-decision-url="/api/review/items/{id}/decision/"' in html
    assert 'data-release-url="/api/review/items/{id}/release/"' in html
    assert 'data-dataset=""' in html
    for hook in (
        'id="review-stage"',
        'id="review-image"',
        'id="review-status"',
        'id="review-empty"',
    ):
        assert hook in html
    assert 'class="review-stage is-blurred' in html
    assert "js/review.js" in html


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
