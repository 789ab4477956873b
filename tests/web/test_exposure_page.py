"""The admins' Exposure page: per reviewer per day, and each reviewer's rules (audited)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from reviewer.models import ExposureSettings, Reveal
from tests.reviewer.factories import item_of, make_dataset

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def exposed(reviewer_user):
    """Two images revealed to the reviewer today, 30 s and 90 s."""
    _, _, images = make_dataset([0.9, 0.8])
    now = timezone.now()
    for image, seconds in zip(images, (30, 90), strict=True):
        Reveal.objects.create(
            reviewer=reviewer_user, image=image, item=item_of(image), view="single",
            revealed_at=now - timedelta(seconds=seconds + 5),
            hidden_at=now - timedelta(seconds=5), duration_ms=seconds * 1000,
        )  # fmt: skip
    return images


def test_the_page_shows_the_days_totals(admin_user, reviewer_user, exposed):
    page = client_for(admin_user).get(reverse("review-exposure"))
    assert page.status_code == 200
    html = page.content.decode()
    today = timezone.localdate().isoformat()
    assert f'data-reviewer="reviewer" data-day="{today}"' in html
    row = html[html.index(f'data-day="{today}"') :]
    assert '<td class="num tabular" data-col="images">2</td>' in row
    assert '<td class="num tabular" data-col="reveals">2</td>' in row
    assert '<td class="num tabular" data-col="revealed">2.0</td>' in row
    assert f'id="reviewer-{reviewer_user.pk}"' in html
    assert 'href="/review/exposure/"' in html and 'aria-current="page">Exposure' in html


def test_the_range_is_7_14_or_30_days(admin_user, exposed):
    client = client_for(admin_user)
    for days in (7, 30):
        page = client.get(reverse("review-exposure"), {"days": days})
        assert page.status_code == 200
        assert f'aria-current="page">{days} days' in page.content.decode()
    for bad in ("abc", "2", "99999999999999999999999"):
        page = client.get(reverse("review-exposure"), {"days": bad})
        assert page.status_code == 400
        assert "choose 7, 14 or 30" in page.content.decode()


def test_only_admins_see_it(reviewer_user):
    assert client_for(reviewer_user).get(reverse("review-exposure")).status_code == 403
    anonymous = Client().get(reverse("review-exposure"))
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    url = reverse("review-exposure-settings", args=[reviewer_user.pk])
    assert client_for(reviewer_user).post(url, {"daily_reveal_cap": "0"}).status_code == 403
    assert not ExposureSettings.objects.exists()
    # Reviewers get no Exposure link.
    review_page = client_for(reviewer_user).get("/review/").content.decode()
    assert 'href="/review/exposure/"' not in review_page


def test_an_admin_sets_a_reviewers_rules_and_it_is_audited(admin_user, reviewer_user):
    client = client_for(admin_user)
    url = reverse("review-exposure-settings", args=[reviewer_user.pk])
    response = client.post(
        url + "?days=30",
        {"daily_reveal_cap": "250", "break_after_minutes": "45", "break_minutes": ""},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/review/exposure/?days=30#reviewer-{reviewer_user.pk}"
    own = ExposureSettings.objects.get(reviewer=reviewer_user)
    assert (own.daily_reveal_cap, own.break_after_minutes, own.break_minutes) == (250, 45, None)
    assert own.updated_by == admin_user
    event = AuditEvent.objects.get(action="exposure_settings.update")
    assert event.actor == admin_user
    assert event.after == {
        "daily_reveal_cap": 250,
        "break_after_minutes": 45,
        "break_minutes": None,
    }
    page = client.get(response["Location"]).content.decode()
    assert "Exposure settings of reviewer saved." in page
    form = f"exposure-form-{reviewer_user.pk}"
    assert f'name="daily_reveal_cap" form="{form}" value="250"' in page


@pytest.mark.parametrize(
    "data",
    [
        {"daily_reveal_cap": "-1"},
        {"daily_reveal_cap": "abc"},
        {"daily_reveal_cap": "100001"},
        {"break_after_minutes": "1441"},
        {"break_minutes": "0"},
        {"break_minutes": "99999999999999999999999999"},
    ],
)
def test_bad_rules_are_400_and_change_nothing(admin_user, reviewer_user, data):
    response = client_for(admin_user).post(
        reverse("review-exposure-settings", args=[reviewer_user.pk]), data
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="field-error"' in html and 'aria-invalid="true"' in html
    assert not ExposureSettings.objects.exists()
    assert not AuditEvent.objects.filter(action="exposure_settings.update").exists()


def test_an_unknown_reviewer_is_404(admin_user):
    client = client_for(admin_user)
    assert client.post(reverse("review-exposure-settings", args=[10**12]), {}).status_code == 404
    assert client.post("/review/exposure/reviewers/99999999999999999999/", {}).status_code == 404


def test_the_page_has_no_inline_script_or_style(admin_user, reviewer_user, exposed):
    client = client_for(admin_user)
    # With a failed form too: its error markup is part of the page.
    client.post(
        reverse("review-exposure-settings", args=[reviewer_user.pk]), {"break_minutes": "0"}
    )
    for response in (
        client.get(reverse("review-exposure")),
        client.post(
            reverse("review-exposure-settings", args=[reviewer_user.pk]), {"break_minutes": "0"}
        ),
    ):
        html = response.content.decode()
        assert "<script" not in html.replace('<script src="/static/js/app.js" defer></script>', "")
        assert "<style" not in html and " style=" not in html and "onclick=" not in html
