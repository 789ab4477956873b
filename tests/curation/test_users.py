"""User management services: create, reset a password, deactivate and reactivate, change the
role, assign datasets; each an audit event without any password in it."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from rest_framework.authtoken.models import Token

from audit.models import AuditEvent
from curation.errors import NotAllowed, ValidationFailed
from curation.models import DatasetAssignment
from curation.services.users import (
    user_active_set,
    user_create,
    user_datasets_set,
    user_password_reset,
    user_role,
    user_role_set,
)
from reviewer.models import ReviewItem
from reviewer.services.queue import QueueFilters, review_item_batch
from tests.access import assign
from tests.reviewer.factories import make_dataset

pytestmark = pytest.mark.django_db

GOOD_PASSWORD = "correct-horse-battery-42"


def can_log_in(username: str, password: str) -> bool:
    """Through the real login page (its backends need the request)."""
    response = Client().post("/accounts/login/", {"username": username, "password": password})
    return response.status_code == 302


def events(action: str, user) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=action, target_type="user", target_id=user.pk).order_by(
            "id"
        )
    )


def no_password_in(event: AuditEvent, *passwords: str) -> None:
    text = json.dumps([event.before, event.after, event.details])
    for password in passwords:
        assert password not in text


# --- Create ------------------------------------------------------------------------------


def test_create_a_reviewer_with_a_chosen_password(admin_user):
    issued = user_create(
        username=" rita ", role="reviewer", password=GOOD_PASSWORD, created_by=admin_user
    )
    user = issued.user
    assert issued.generated_password is None
    assert user.username == "rita" and not user.is_staff and user.is_active
    assert can_log_in("rita", GOOD_PASSWORD)
    (event,) = events("user.create", user)
    assert event.actor_id == admin_user.pk
    assert event.after == {"username": "rita", "role": "reviewer", "is_active": True}
    assert event.details["password"] == "set by the admin"
    no_password_in(event, GOOD_PASSWORD)


def test_create_an_admin_with_a_generated_password(admin_user):
    issued = user_create(username="ada", role="admin", password=None, created_by=admin_user)
    assert issued.user.is_staff and not issued.user.is_superuser
    assert issued.generated_password and len(issued.generated_password) >= 12
    assert can_log_in("ada", issued.generated_password)
    (event,) = events("user.create", issued.user)
    assert event.details["password"] == "generated"
    no_password_in(event, issued.generated_password)


@pytest.mark.parametrize(
    ("username", "role", "password", "message"),
    [
        ("rita", "reviewer", "short", "too short"),
        ("rita", "reviewer", "password123", "too common"),
        ("rita", "reviewer", "12345678901234", "entirely numeric"),
        ("rita-the-reviewer", "reviewer", "rita-the-reviewer", "too similar"),
        ("bad name!", "reviewer", GOOD_PASSWORD, "valid username"),
        ("", "reviewer", GOOD_PASSWORD, "blank"),
        ("rita", "owner", GOOD_PASSWORD, "Unknown role"),
        ("ADMIN", "reviewer", GOOD_PASSWORD, "exists already"),
    ],
)
def test_create_refuses_bad_input(admin_user, django_user_model, username, role, password, message):
    before = django_user_model.objects.count()
    with pytest.raises(ValidationFailed, match=message):
        user_create(username=username, role=role, password=password, created_by=admin_user)
    assert django_user_model.objects.count() == before
    assert not AuditEvent.objects.filter(action="user.create").exists()


# --- Passwords ---------------------------------------------------------------------------


def test_a_password_reset_revokes_tokens_and_records_no_password(admin_user, reviewer_user):
    Token.objects.create(user=reviewer_user)
    issued = user_password_reset(user=reviewer_user, password=None, reset_by=admin_user)
    assert issued.generated_password
    assert not Token.objects.filter(user=reviewer_user).exists()
    assert not can_log_in("reviewer", "review-pass-123")
    assert can_log_in("reviewer", issued.generated_password)
    (event,) = events("user.password_reset", reviewer_user)
    assert event.before is None and event.after is None
    no_password_in(event, issued.generated_password)
    user_password_reset(user=reviewer_user, password=GOOD_PASSWORD, reset_by=admin_user)
    assert can_log_in("reviewer", GOOD_PASSWORD)
    no_password_in(events("user.password_reset", reviewer_user)[-1], GOOD_PASSWORD)


def test_a_reset_password_must_pass_the_validators(admin_user, reviewer_user):
    with pytest.raises(ValidationFailed, match="too short"):
        user_password_reset(user=reviewer_user, password="abc", reset_by=admin_user)
    reviewer_user.refresh_from_db()
    assert reviewer_user.check_password("review-pass-123")
    assert events("user.password_reset", reviewer_user) == []


# --- Deactivate / reactivate -------------------------------------------------------------


def test_deactivation_stops_logins_revokes_tokens_and_releases_leases(admin_user, reviewer_user):
    dataset, _, _ = make_dataset([0.9, 0.8, 0.7])
    assign(reviewer_user, dataset)
    held = review_item_batch(reviewer=reviewer_user, limit=2, filters=QueueFilters(dataset=dataset))
    assert len(held) == 2
    token = Token.objects.create(user=reviewer_user)
    user_active_set(user=reviewer_user, active=False, changed_by=admin_user)
    reviewer_user.refresh_from_db()
    assert not reviewer_user.is_active
    assert not can_log_in("reviewer", "review-pass-123")
    assert not Token.objects.filter(pk=token.pk).exists()
    assert not ReviewItem.objects.filter(leased_by=reviewer_user).exists()
    # The token no longer opens the API.
    response = Client().get("/api/review/stats/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 401
    (event,) = events("user.deactivate", reviewer_user)
    assert (event.before, event.after) == ({"is_active": True}, {"is_active": False})
    assert event.details["tokens_revoked"] == 1 and event.details["leases_released"] == 2
    assert event.details["sessions_ended"] == 0  # (never logged in through a browser here)
    # Assignments stay: reactivating gives the same datasets back.
    assert DatasetAssignment.objects.filter(user=reviewer_user, dataset=dataset).exists()
    user_active_set(user=reviewer_user, active=True, changed_by=admin_user)
    assert can_log_in("reviewer", "review-pass-123")
    assert len(events("user.reactivate", reviewer_user)) == 1


def test_deactivation_leaves_other_reviewers_leases_alone(
    admin_user, reviewer_user, django_user_model
):
    other = django_user_model.objects.create_user(username="otto", password="x")
    dataset, _, _ = make_dataset([0.9, 0.8])
    assign(reviewer_user, dataset)
    assign(other, dataset)
    review_item_batch(reviewer=reviewer_user, limit=1, filters=QueueFilters(dataset=dataset))
    review_item_batch(reviewer=other, limit=1, filters=QueueFilters(dataset=dataset))
    user_active_set(user=reviewer_user, active=False, changed_by=admin_user)
    assert ReviewItem.objects.filter(leased_by=other).count() == 1


def test_an_admin_cannot_deactivate_themselves(admin_user):
    with pytest.raises(NotAllowed, match="your own account"):
        user_active_set(user=admin_user, active=False, changed_by=admin_user)
    admin_user.refresh_from_db()
    assert admin_user.is_active
    assert not AuditEvent.objects.filter(action="user.deactivate").exists()


def test_setting_the_same_state_again_records_nothing(admin_user, reviewer_user):
    user_active_set(user=reviewer_user, active=True, changed_by=admin_user)
    assert not AuditEvent.objects.exists()


# --- Roles -------------------------------------------------------------------------------


def test_promotion_makes_an_admin_and_drops_assignments(admin_user, reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    assign(reviewer_user, dataset)
    user_role_set(user=reviewer_user, role="admin", changed_by=admin_user)
    reviewer_user.refresh_from_db()
    assert reviewer_user.is_staff and user_role(reviewer_user) == "admin"
    assert not DatasetAssignment.objects.filter(user=reviewer_user).exists()
    (event,) = events("user.role_change", reviewer_user)
    assert (event.before, event.after) == ({"role": "reviewer"}, {"role": "admin"})
    assert event.details["assignments_removed"] == [dataset.pk]


def test_demotion_keeps_leases_only_on_assigned_datasets(admin_user, django_user_model):
    other_admin = django_user_model.objects.create_user(
        username="ada", password="x", is_staff=True, is_superuser=True
    )
    kept, _, _ = make_dataset([0.9])
    lost, _, _ = make_dataset([0.9])
    review_item_batch(reviewer=other_admin, limit=1, filters=QueueFilters(dataset=kept))
    review_item_batch(reviewer=other_admin, limit=1, filters=QueueFilters(dataset=lost))
    assign(other_admin, kept)  # (an assignment left from before they were an admin)
    user_role_set(user=other_admin, role="reviewer", changed_by=admin_user)
    other_admin.refresh_from_db()
    assert not other_admin.is_staff and not other_admin.is_superuser
    leased = ReviewItem.objects.filter(leased_by=other_admin).values_list("dataset_id", flat=True)
    assert list(leased) == [kept.pk]
    assert events("user.role_change", other_admin)[0].details["leases_released"] == 1


def test_an_admin_cannot_change_their_own_role(admin_user):
    with pytest.raises(NotAllowed, match="your own role"):
        user_role_set(user=admin_user, role="reviewer", changed_by=admin_user)
    admin_user.refresh_from_db()
    assert admin_user.is_staff


def test_an_unknown_role_is_refused(admin_user, reviewer_user):
    with pytest.raises(ValidationFailed, match="Unknown role"):
        user_role_set(user=reviewer_user, role="superuser", changed_by=admin_user)


# --- Datasets ----------------------------------------------------------------------------


def test_assigning_datasets_replaces_the_set_and_releases_lost_leases(admin_user, reviewer_user):
    first, _, _ = make_dataset([0.9])
    second, _, _ = make_dataset([0.9])
    third, _, _ = make_dataset([0.9])
    assert user_datasets_set(
        user=reviewer_user, dataset_ids=[second.pk, first.pk], assigned_by=admin_user
    ) == sorted([first.pk, second.pk])
    review_item_batch(reviewer=reviewer_user, limit=1, filters=QueueFilters(dataset=first))
    review_item_batch(reviewer=reviewer_user, limit=1, filters=QueueFilters(dataset=second))
    user_datasets_set(user=reviewer_user, dataset_ids=[second.pk, third.pk], assigned_by=admin_user)
    assert set(
        DatasetAssignment.objects.filter(user=reviewer_user).values_list("dataset_id", flat=True)
    ) == {second.pk, third.pk}
    assert list(
        ReviewItem.objects.filter(leased_by=reviewer_user).values_list("dataset_id", flat=True)
    ) == [second.pk]
    first_event, second_event = events("user.datasets_assign", reviewer_user)
    assert first_event.before == {"datasets": []}
    assert second_event.before == {"datasets": sorted([first.pk, second.pk])}
    assert second_event.after == {"datasets": sorted([second.pk, third.pk])}
    # The same set again: nothing recorded.
    user_datasets_set(user=reviewer_user, dataset_ids=[third.pk, second.pk], assigned_by=admin_user)
    assert len(events("user.datasets_assign", reviewer_user)) == 2


def test_admins_are_not_assigned_and_unknown_datasets_are_refused(admin_user, reviewer_user):
    dataset, _, _ = make_dataset([0.9])
    with pytest.raises(ValidationFailed, match="Admins review every dataset"):
        user_datasets_set(user=admin_user, dataset_ids=[dataset.pk], assigned_by=admin_user)
    with pytest.raises(ValidationFailed, match="No such datasets: 999999"):
        user_datasets_set(
            user=reviewer_user, dataset_ids=[dataset.pk, 999999], assigned_by=admin_user
        )
    assert not DatasetAssignment.objects.filter(user=reviewer_user).exists()
