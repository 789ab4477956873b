"""Reads for the Users pages: accounts with their role, last login and assigned datasets."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Prefetch, QuerySet

from curation.models import Dataset, DatasetAssignment


def _with_assignments(users: QuerySet[User]) -> QuerySet[User]:
    return users.prefetch_related(
        Prefetch(
            "dataset_assignments",
            queryset=DatasetAssignment.objects.select_related("dataset").order_by(
                "dataset__name", "dataset_id"
            ),
        )
    )


def user_list() -> QuerySet[User]:
    """Every account: active ones first, admins before reviewers, then by name."""
    users = get_user_model().objects.order_by("-is_active", "-is_staff", "username")
    return _with_assignments(users)


def user_detail(*, user_id: int) -> User | None:
    return _with_assignments(get_user_model().objects.filter(pk=user_id)).first()


def user_dataset_ids(*, user: User) -> list[int]:
    return list(
        DatasetAssignment.objects.filter(user=user)
        .order_by("dataset_id")
        .values_list("dataset_id", flat=True)
    )


def assignable_datasets() -> QuerySet[Dataset]:
    return Dataset.objects.order_by("name", "id")
