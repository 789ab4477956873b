"""Who reviews which dataset: admins assign reviewers (non-staff users) to datasets."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import transaction

from audit.services import audit_record
from curation.errors import ValidationFailed
from curation.hooks import reviewers_unassigned
from curation.models import Dataset, DatasetAssignment


def _reviewers(user_ids: Iterable[int]) -> list:
    ids = sorted(set(user_ids))
    users = list(get_user_model().objects.filter(pk__in=ids))
    found = {user.pk for user in users}
    missing = [user_id for user_id in ids if user_id not in found]
    if missing:
        raise ValidationFailed(f"No such users: {', '.join(map(str, missing))}.")
    staff = [user.get_username() for user in users if user.is_staff]
    if staff:
        raise ValidationFailed(
            f"Admins review every dataset and are not assigned: {', '.join(staff)}."
        )
    return users


def _reviewer_names(dataset: Dataset) -> list[str]:
    return sorted(
        DatasetAssignment.objects.filter(dataset=dataset).values_list("user__username", flat=True)
    )


def _audit_reviewers(dataset: Dataset, *, actor: User | None, before: list[str]) -> None:
    """An "assignment.update" event with the reviewer lists, when the list changed."""
    after = _reviewer_names(dataset)
    if after != before:
        audit_record(
            actor=actor,
            action="assignment.update",
            target=dataset,
            before={"reviewers": before},
            after={"reviewers": after},
        )


def dataset_reviewer_assign(
    *, dataset: Dataset, user: User, assigned_by: User | None = None
) -> DatasetAssignment:
    _reviewers([user.pk])
    with transaction.atomic():
        before = _reviewer_names(dataset)
        assignment, _ = DatasetAssignment.objects.get_or_create(
            dataset=dataset, user=user, defaults={"assigned_by": assigned_by}
        )
        _audit_reviewers(dataset, actor=assigned_by, before=before)
    return assignment


def dataset_reviewer_unassign(*, dataset: Dataset, user: User, actor: User | None = None) -> None:
    """The reviewer loses the dataset at once; leases they hold on it are released."""
    with transaction.atomic():
        before = _reviewer_names(dataset)
        DatasetAssignment.objects.filter(dataset=dataset, user=user).delete()
        reviewers_unassigned.send(sender=Dataset, dataset_id=dataset.pk, user_ids=[user.pk])
        _audit_reviewers(dataset, actor=actor, before=before)


def dataset_reviewers_set(
    *, dataset: Dataset, user_ids: Iterable[int], assigned_by: User | None = None
) -> list:
    """Make exactly these users the dataset's reviewers; returns them."""
    users = _reviewers(user_ids)
    wanted = {user.pk for user in users}
    with transaction.atomic():
        before = _reviewer_names(dataset)
        current = set(
            DatasetAssignment.objects.filter(dataset=dataset).values_list("user_id", flat=True)
        )
        removed = current - wanted
        DatasetAssignment.objects.filter(dataset=dataset, user_id__in=removed).delete()
        if removed:
            reviewers_unassigned.send(
                sender=Dataset, dataset_id=dataset.pk, user_ids=sorted(removed)
            )
        DatasetAssignment.objects.bulk_create(
            [
                DatasetAssignment(dataset=dataset, user=user, assigned_by=assigned_by)
                for user in users
                if user.pk not in current
            ],
            ignore_conflicts=True,
        )
        _audit_reviewers(dataset, actor=assigned_by, before=before)
    return sorted(users, key=lambda user: user.get_username())
