"""The Audit log page and its CSV: staff only, newest first, filters (actor, action prefix,
object type, dates), keyset pages, links to the objects that still exist, before → after,
and bad filters answered 400 with the reason."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_context, audit_record
from curation.models import Dataset

pytestmark = pytest.mark.django_db

URL = "/audit/"
CSV_URL = "/audit/export.csv"


def _rows(response) -> list[str]:
    """The actions of the rows shown, in order."""
    return [row["event"].action for row in response.context["rows"]]


def _csv(response) -> list[dict[str, str]]:
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def log(admin_user, reviewer_user, dataset, version):
    """A small log: an admin's actions, a reviewer's token, a command, a deleted dataset."""
    gone = Dataset.objects.create(name="gone", source_kind="folder", source="/x", root_path="/x")
    audit_record(
        actor=admin_user, action="dataset.import", target=dataset, after={"name": dataset.name}
    )
    audit_record(actor=admin_user, action="dataset.import", target=gone, after={"name": "gone"})
    audit_record(
        actor=admin_user, action="assignment.update", target=dataset,
        before={"reviewers": ["rita"]}, after={"reviewers": ["sam", "tom"]},
    )  # fmt: skip
    audit_record(
        actor=admin_user, action="prompt_version.activate", target=version,
        before={"active_version": None}, after={"active_version": version.pk},
    )  # fmt: skip
    audit_record(actor=reviewer_user, action="token.create", target=reviewer_user)
    with audit_context(source="command: manage_work"):
        audit_record(actor=None, action="run.cancel", before={"state": "running"},
                     after={"state": "cancelled"})  # fmt: skip
    audit_record(actor=None, action="run.requeue", details={"reason": "lost-work recovery"})
    gone.delete()
    return dataset


def test_only_admins_see_the_log(log, client, reviewer_user):
    assert client.get(URL).status_code == 302  # to the login page
    client.force_login(reviewer_user)
    assert client.get(URL).status_code == 403
    assert client.get(CSV_URL).status_code == 403


def test_the_log_shows_every_event_newest_first(web, log, version):
    response = web.get(URL)
    assert response.status_code == 200
    assert _rows(response) == [
        "run.requeue", "run.cancel", "token.create", "prompt_version.activate",
        "assignment.update", "dataset.import", "dataset.import",
    ]  # fmt: skip
    html = response.content.decode()
    assert f'href="{reverse("dataset-detail", args=[log.pk])}"' in html
    assert f'href="{reverse("prompt-versions")}#version-{version.pk}"' in html
    assert "(gone)" in html  # the deleted dataset: named, not linked
    assert "command: manage_work" in html and "lost-work recovery" in html
    assert '<ins class="audit-chip">+ sam</ins>' in html
    assert '<del class="audit-chip">− rita</del>' in html
    assert "<del>running</del>" in html and "<ins>cancelled</ins>" in html
    assert 'aria-current="page">Audit log</a>' in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "run."}, ["run.requeue", "run.cancel"]),
        ({"action": "Dataset.Import"}, ["dataset.import", "dataset.import"]),
        ({"actor": "reviewer"}, ["token.create"]),
        ({"actor": "(system)"}, ["run.requeue", "run.cancel"]),
        ({"target_type": "dataset"}, ["assignment.update", "dataset.import", "dataset.import"]),
        ({"target_type": "dataset", "action": "assignment"}, ["assignment.update"]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters(web, log, query, expected):
    response = web.get(URL, query)
    assert response.status_code == 200
    assert _rows(response) == expected


def test_date_filters_are_whole_days_inclusive(web, log):
    today = timezone.localdate()
    assert len(_rows(web.get(URL, {"date_from": today.isoformat()}))) == 7
    assert len(_rows(web.get(URL, {"date_to": today.isoformat()}))) == 7
    yesterday = (today - timedelta(days=1)).isoformat()
    assert _rows(web.get(URL, {"date_to": yesterday})) == []
    tomorrow = (today + timedelta(days=1)).isoformat()
    assert _rows(web.get(URL, {"date_from": tomorrow})) == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"date_from": "2026-05-02", "date_to": "2026-05-01"}, "before the start date"),
        ({"date_from": "yesterday"}, "Enter a valid date"),
        ({"before": "abc"}, "Enter a whole number"),
        ({"before": "99999999999999999999"}, "less than or equal to"),
        ({"before": "0"}, "greater than or equal to 1"),
        ({"before": "123456789"}, "no audit event #123456789"),
        ({"before": "1", "after": "2"}, "not both"),
        ({"actor": "a\x00b"}, "Null characters are not allowed"),
        ({"action": "x" * 65}, "at most 64 characters"),
    ],
)
def test_bad_filters_answer_400_with_the_reason(web, log, query, message):
    response = web.get(URL, query)
    assert response.status_code == 400
    assert message in response.content.decode()
    if "no audit event" not in message:  # the CSV refuses the same filters
        assert web.get(CSV_URL, query).status_code == 400


def test_pages_are_cut_by_keyset_and_keep_the_filters(web, admin_user, dataset):
    for number in range(120):
        audit_record(actor=admin_user, action="run.start", after={"n": number})
    audit_record(actor=admin_user, action="export.create")
    seen: list[int] = []
    response = web.get(URL, {"action": "run."})
    pages = 0
    while True:
        pages += 1
        seen += [row["event"].after["n"] for row in response.context["rows"]]
        older = response.context["older_query"]
        if older is None:
            break
        assert "action=run." in older
        response = web.get(URL + "?" + older)
        assert response.status_code == 200
        assert response.context["newer_query"] is not None  # and back again
    assert pages == 3 and seen == list(range(119, -1, -1))

    newer = web.get(URL + "?" + response.context["newer_query"])
    assert [row["event"].after["n"] for row in newer.context["rows"]] == list(range(69, 19, -1))
    assert newer.context["older_query"] is not None and newer.context["newer_query"] is not None


def test_a_page_costs_the_same_queries_whatever_its_length(
    web, admin_user, dataset, version, django_assert_max_num_queries
):
    for _ in range(60):
        audit_record(actor=admin_user, action="dataset.import", target=dataset)
        audit_record(actor=admin_user, action="prompt_version.activate", target=version)
    with django_assert_max_num_queries(12):
        response = web.get(URL)
    assert len(response.context["rows"]) == 50


def test_csv_export_streams_the_filtered_events(web, log, version):
    response = web.get(CSV_URL, {"action": "prompt_version."})
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="q16-audit-log-')
    rows = _csv(response)
    assert len(rows) == 1
    row = rows[0]
    assert (row["actor"], row["action"], row["object_type"], row["object_id"]) == (
        "admin", "prompt_version.activate", "promptversion", str(version.pk),
    )  # fmt: skip
    assert json.loads(row["before"]) == {"active_version": None}
    assert json.loads(row["after"]) == {"active_version": version.pk}
    everything = _csv(web.get(CSV_URL))
    assert [r["action"] for r in everything][:2] == ["run.requeue", "run.cancel"]
    assert len(everything) == 7
    assert everything[1]["actor"] == "(system)"
    assert json.loads(everything[1]["details"]) == {"source": "command: manage_work"}


def test_csv_cells_never_start_a_formula(web, admin_user):
    dataset = Dataset.objects.create(
        name='=HYPERLINK("http://evil")', source_kind="folder", source="/x", root_path="/x"
    )
    audit_record(actor=admin_user, action="dataset.import", target=dataset)
    row = _csv(web.get(CSV_URL))[0]
    assert row["object"] == '\'=HYPERLINK("http://evil")'


def test_the_page_keeps_the_strict_content_security_policy(web, log):
    response = web.get(URL)
    page = response.content.decode()
    assert "unsafe-inline" not in response["Content-Security-Policy"]
    assert "<style" not in page and " style=" not in page and "onclick=" not in page
    assert "<script>" not in page


def test_the_empty_log(web, db):
    response = web.get(URL)
    assert response.status_code == 200 and "No events" in response.content.decode()
    body = b"".join(web.get(CSV_URL).streaming_content).decode()
    assert body == "time,actor,action,object_type,object_id,object,before,after,details\r\n"
    assert not AuditEvent.objects.exists()
