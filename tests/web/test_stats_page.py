"""The dataset statistics page is a shell for static/js/dataset_stats.js: admins only, and it
hands the script the review statistics API of its dataset."""

from __future__ import annotations

from django.urls import reverse

from curation.views import _review_stats_api_url


def test_stats_page_hands_the_api_url_to_the_script(client, admin_user, dataset):
    client.force_login(admin_user)
    response = client.get(reverse("dataset-stats", args=[dataset.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    api_url = _review_stats_api_url(dataset.pk)
    assert f'data-stats-url="{api_url}"' in html
    assert str(dataset.pk) in api_url and "/api/" in api_url
    for hook in ("histogram-plot", "thresholds-plot", "thresholds-table", "agreement-table"):
        assert f'id="{hook}"' in html
    assert "js/plots.js" in html and "js/dataset_stats.js" in html
    assert "<script>" not in html and " style=" not in html  # CSP-ready: no inline code or styles


def test_stats_api_url_is_the_mounted_endpoint(client, admin_user, dataset):
    client.force_login(admin_user)
    response = client.get(_review_stats_api_url(dataset.pk))
    assert response.status_code == 200
    assert {"counts", "precision", "histogram", "thresholds"} <= set(response.json())


def test_dataset_page_links_to_its_stats(client, admin_user, dataset):
    client.force_login(admin_user)
    html = client.get(reverse("dataset-detail", args=[dataset.pk])).content.decode()
    assert f'href="{reverse("dataset-stats", args=[dataset.pk])}"' in html


def test_reviewers_cannot_open_the_stats_page(client, reviewer_user, dataset):
    client.force_login(reviewer_user)
    assert client.get(reverse("dataset-stats", args=[dataset.pk])).status_code == 403


def test_unknown_dataset_is_404(client, admin_user, db):
    client.force_login(admin_user)
    assert client.get(reverse("dataset-stats", args=[424242])).status_code == 404
