"""Audit events cannot be edited or deleted: not through the model or its queryset, not in the
Django admin, not through any URL of the app, and on PostgreSQL not even with raw SQL (a
trigger). Deleting a user keeps their events (the actor becomes NULL, the name stays);
deleting a dataset keeps its events."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from audit.models import AppendOnlyError, AuditEvent
from audit.services import audit_record
from curation.services.datasets import dataset_delete

pytestmark = pytest.mark.django_db

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the trigger is PostgreSQL's (SQLite has none)"
)


def _snapshot() -> list[tuple]:
    return list(AuditEvent.objects.order_by("pk").values_list())


@pytest.fixture
def events(admin_user, dataset):
    audit_record(
        actor=admin_user, action="dataset.import", target=dataset, after={"name": dataset.name}
    )
    audit_record(actor=None, action="run.requeue", details={"reason": "test"})
    return list(AuditEvent.objects.order_by("pk"))


def test_the_model_and_queryset_refuse_changes(events):
    event = events[0]
    event.action = "dataset.delete"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "dataset.import"


def test_the_django_admin_only_shows_events(events, admin_user):
    client = Client()
    client.force_login(admin_user)  # a superuser: every other model can be changed
    event = events[0]
    listing = client.get(reverse("admin:audit_auditevent_changelist"))
    assert listing.status_code == 200 and "dataset.import" in listing.content.decode()
    detail = client.get(reverse("admin:audit_auditevent_change", args=[event.pk]))
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.content.decode()  # read-only: no save button
    before = _snapshot()
    for url, data in (
        (reverse("admin:audit_auditevent_add"), {"action": "forged"}),
        (reverse("admin:audit_auditevent_change", args=[event.pk]), {"action": "forged"}),
        (reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}),
        (
            reverse("admin:audit_auditevent_changelist"),
            {
                "action": "delete_selected",
                "_selected_action": [e.pk for e in events],
                "post": "yes",
            },
        ),
    ):
        response = client.post(url, data)
        assert response.status_code in (200, 302, 403), (url, response.status_code)
    assert _snapshot() == before


def _project_routes() -> list[str]:
    """Every URL pattern of the app outside the Django admin, as a route string."""
    routes: list[str] = []

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name == "admin":
                    continue  # tested above
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                routes.append(prefix + str(pattern.pattern))

    walk(get_resolver().url_patterns, "/")
    return routes


def test_no_url_of_the_app_changes_or_deletes_an_event(events, admin_user):
    # Every id in the URLs is an event's; not a user's too (the walk must not demote the admin).
    user_ids = set(get_user_model().objects.values_list("pk", flat=True))
    while events[-1].pk in user_ids:
        events.append(audit_record(actor=None, action="run.requeue"))
    event_id = str(events[-1].pk)
    before = _snapshot()
    routes = _project_routes()
    assert "/audit/" in routes and "/audit/export.csv" in routes
    client = Client()
    tried = 0
    forged = {"action": "forged", "actor_name": "mallory", "before": "{}", "after": "{}"}
    for route in routes:
        if route == "/accounts/logout/":
            continue  # would only log the client out
        url = re.sub(r"<(?:\w+:)?\w+>", event_id, route)
        for method in ("post", "put", "patch", "delete"):
            client.force_login(admin_user)
            getattr(client, method)(url, forged, content_type="application/json")
            tried += 1
    assert tried > 100
    # Actions may have appended events of their own; the recorded ones are untouched.
    assert _snapshot()[: len(before)] == before


def test_deleting_a_dataset_keeps_its_events(events, admin_user, dataset):
    dataset_id = dataset.pk
    dataset_delete(dataset=dataset, actor=admin_user)
    kept = AuditEvent.objects.filter(target_type="dataset", target_id=dataset_id)
    assert sorted(kept.values_list("action", flat=True)) == ["dataset.delete", "dataset.import"]


def test_deleting_a_user_keeps_their_events_with_their_name(events, django_user_model):
    user = django_user_model.objects.create_user(username="temp-admin", is_staff=True)
    event = audit_record(actor=user, action="export.create")
    user.delete()
    kept = AuditEvent.objects.get(pk=event.pk)
    assert (kept.actor_id, kept.actor_name, kept.action) == (None, "temp-admin", "export.create")
    assert AuditEvent.objects.filter(actor_name="admin").count() == 1


@postgres_only
def test_postgres_refuses_a_raw_update_or_delete(events):
    event = events[0]
    for sql in (
        "UPDATE audit_auditevent SET action = 'forged' WHERE id = %s",
        "UPDATE audit_auditevent SET actor_name = 'mallory' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "dataset.import"
    assert AuditEvent.objects.filter(pk=event.pk).values_list("actor_name", flat=True)[0] == "admin"


@postgres_only
def test_postgres_lets_only_the_actor_become_null(events):
    """What a user's deletion does (SET NULL), and nothing else with it."""
    event = events[0]
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE audit_auditevent SET actor_id = NULL, action = 'x' WHERE id = %s", [event.pk]
        )
    other = get_user_model().objects.create_user(username="someone-else")
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):  # another actor is not "no actor"
        cursor.execute(
            "UPDATE audit_auditevent SET actor_id = %s WHERE id = %s", [other.pk, event.pk]
        )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditevent SET actor_id = NULL WHERE id = %s", [event.pk])
    kept = AuditEvent.objects.get(pk=event.pk)
    assert (kept.actor_id, kept.actor_name, kept.action) == (None, "admin", "dataset.import")
