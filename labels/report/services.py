"""Saving and publishing a dataset report's answer paragraph, recorded in the audit log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation.errors import ValidationFailed
from curation.models import Dataset
from labels.models import DatasetReport

if TYPE_CHECKING:
    from django.contrib.auth.models import User

MAX_ANSWER_CHARS = 8000
ACTIONS = ("save", "publish", "unpublish")


def report_answer_save(*, dataset: Dataset, text: str, action: str, actor: User) -> DatasetReport:
    """`save` keeps the text as a draft (a published report goes back to draft: what was
    published is no longer what is written), `publish` saves and publishes it, `unpublish`
    keeps the text and withdraws it. Audited as report.edit / report.publish."""
    if action not in ACTIONS:
        raise ValidationFailed(f"Unknown action {action!r}; use one of: {', '.join(ACTIONS)}.")
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("The answer cannot be empty.")
    if len(text) > MAX_ANSWER_CHARS:
        raise ValidationFailed(f"The answer is limited to {MAX_ANSWER_CHARS:,} characters.")
    now = timezone.now()
    with transaction.atomic():
        report = DatasetReport.objects.select_for_update().filter(dataset=dataset).first()
        before = (
            {"answer_text": report.answer_text, "is_published": report.is_published}
            if report is not None
            else None
        )
        if report is None:
            report = DatasetReport(dataset=dataset)
        if text != report.answer_text or report._state.adding:
            report.answer_text = text
            report.edited_by = actor
            report.edited_at = now
        report.is_published = action == "publish"
        if action == "publish":
            report.published_by = actor
            report.published_at = now
        report.save()
        audit_record(
            actor=actor,
            action="report.publish" if action != "save" else "report.edit",
            target=dataset,
            before=before,
            after={"answer_text": report.answer_text, "is_published": report.is_published},
            details={"action": action},
        )
    return report
