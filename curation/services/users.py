"""User accounts, managed by admins inside the app: reviewers and admins (staff), passwords,
deactivation and the datasets a reviewer reviews. Every change is an audit event; no
password, given or generated, is ever recorded.

Deactivating revokes the user's API tokens, releases their review leases (through
hooks.user_access_revoked) and deletes their browser sessions (Django refuses an inactive
user's session anyway; deleted, it does not come back with a reactivation). A password
change revokes the tokens too (curation/signals.py) and ends the other sessions (the
session hash changes).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user_model, password_validation
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from audit.services import audit_record
from curation.errors import NotAllowed, ValidationFailed
from curation.hooks import reviewers_unassigned, user_access_revoked
from curation.models import Dataset, DatasetAssignment

ROLE_REVIEWER = "reviewer"
ROLE_ADMIN = "admin"
ROLES = (ROLE_REVIEWER, ROLE_ADMIN)
GENERATED_PASSWORD_BYTES = 12
DATABASE_SESSION_ENGINES = (
    "django.contrib.sessions.backends.db",
    "django.contrib.sessions.backends.cached_db",
)


@dataclass(frozen=True)
class IssuedPassword:
    """The outcome of creating a user or resetting a password: the password when it was
    generated (to be shown once, then forgotten), None when the admin chose it."""

    user: User
    generated_password: str | None


def user_role(user: User) -> str:
    return ROLE_ADMIN if user.is_staff else ROLE_REVIEWER


def _role_or_fail(role: str) -> str:
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.")
    return role


def _password_or_fail(password: str, *, user: User) -> None:
    """Django's password validators (settings.AUTH_PASSWORD_VALIDATORS)."""
    try:
        password_validation.validate_password(password, user=user)
    except ValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages)) from exc


def _generated_password(*, user: User) -> str:
    while True:  # a random token passes the validators all but never; draw again if not
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        try:
            password_validation.validate_password(password, user=user)
        except ValidationError:
            continue
        return password


def _leases_release(user: User, *, keep_assigned: bool) -> int:
    """Release the user's review leases: all of them, or (keep_assigned) those outside the
    datasets they are assigned to."""
    assigned = DatasetAssignment.objects.filter(user=user).values_list("dataset_id", flat=True)
    kept = list(assigned) if keep_assigned else []
    released = 0
    for _, answer in user_access_revoked.send(
        sender=Dataset, user_id=user.pk, kept_dataset_ids=kept
    ):
        released += cast(int, answer) if isinstance(answer, int) else 0
    return released


def _sessions_end(user: User) -> int:
    """Delete the user's browser sessions (database sessions: one pass over the live ones).

    Django already refuses an inactive user's session; deleting it means reactivating the
    account does not bring an old session back."""
    if settings.SESSION_ENGINE not in DATABASE_SESSION_ENGINES:
        return 0
    theirs = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk)
    ]
    deleted, _ = Session.objects.filter(pk__in=theirs).delete()
    return deleted


def user_create(
    *, username: str, role: str, password: str | None, created_by: User
) -> IssuedPassword:
    """Create a reviewer or an admin, with this password or (None) a generated one."""
    user_model = get_user_model()
    username = username.strip()
    _role_or_fail(role)
    candidate = user_model(username=username, is_staff=role == ROLE_ADMIN)
    try:
        candidate.clean_fields(exclude=["password"])
    except ValidationError as exc:
        raise ValidationFailed(" ".join(exc.messages)) from exc
    generated = None
    if password:
        _password_or_fail(password, user=candidate)
    else:
        generated = _generated_password(user=candidate)
    with transaction.atomic():
        if user_model.objects.filter(username__iexact=username).exists():
            raise ValidationFailed(f"A user named {username!r} exists already.")
        user = user_model.objects.create_user(
            username=username, password=password or generated, is_staff=role == ROLE_ADMIN
        )
        audit_record(
            actor=created_by,
            action="user.create",
            target=user,
            after={"username": user.get_username(), "role": role, "is_active": True},
            details={"password": "generated" if generated else "set by the admin"},
        )
    return IssuedPassword(user=user, generated_password=generated)


def user_password_reset(*, user: User, password: str | None, reset_by: User) -> IssuedPassword:
    """Give the user this password or (None) a generated one; their API tokens are revoked
    and their other sessions end."""
    generated = None
    if password:
        _password_or_fail(password, user=user)
    else:
        generated = _generated_password(user=user)
    with transaction.atomic():
        user.set_password(password or generated)
        user.save(update_fields=["password"])
        audit_record(
            actor=reset_by,
            action="user.password_reset",
            target=user,
            details={"password": "generated" if generated else "set by the admin"},
        )
    return IssuedPassword(user=user, generated_password=generated)


def user_active_set(*, user: User, active: bool, changed_by: User) -> User:
    """Deactivate (no login, tokens revoked, leases released) or reactivate a user."""
    if not active and user.pk == changed_by.pk:
        raise NotAllowed("You cannot deactivate your own account; ask another admin.")
    if user.is_active == active:
        return user
    with transaction.atomic():
        details: dict[str, Any] = {}
        if not active:
            # Saving an inactive user deletes the tokens too (curation/signals.py); here first,
            # to count them.
            details["tokens_revoked"], _ = Token.objects.filter(user=user).delete()
        user.is_active = active
        user.save(update_fields=["is_active"])
        if not active:
            details["leases_released"] = _leases_release(user, keep_assigned=False)
            details["sessions_ended"] = _sessions_end(user)
        audit_record(
            actor=changed_by,
            action="user.deactivate" if not active else "user.reactivate",
            target=user,
            before={"is_active": not active},
            after={"is_active": active},
            details=details,
        )
    return user


def user_role_set(*, user: User, role: str, changed_by: User) -> User:
    """Make the user an admin (staff: reviews every dataset, so their assignments go) or a
    reviewer (assigned datasets only: leases elsewhere are released)."""
    _role_or_fail(role)
    if role == user_role(user):
        return user
    if user.pk == changed_by.pk:
        raise NotAllowed("You cannot change your own role; ask another admin.")
    before = user_role(user)
    with transaction.atomic():
        details: dict[str, Any] = {}
        if role == ROLE_ADMIN:
            user.is_staff = True
            removed = list(
                DatasetAssignment.objects.filter(user=user).values_list("dataset_id", flat=True)
            )
            DatasetAssignment.objects.filter(user=user).delete()
            details["assignments_removed"] = sorted(removed)
        else:
            # A reviewer keeps no admin powers, in the Django admin either.
            user.is_staff = False
            user.is_superuser = False
        user.save(update_fields=["is_staff", "is_superuser"])
        if role == ROLE_REVIEWER:
            details["leases_released"] = _leases_release(user, keep_assigned=True)
        audit_record(
            actor=changed_by,
            action="user.role_change",
            target=user,
            before={"role": before},
            after={"role": role},
            details=details,
        )
    return user


def user_datasets_set(*, user: User, dataset_ids: Iterable[int], assigned_by: User) -> list[int]:
    """Make exactly these datasets the reviewer's; leases on the ones taken away are released.
    Returns the dataset ids, sorted."""
    if user.is_staff:
        raise ValidationFailed("Admins review every dataset and are not assigned.")
    wanted = sorted(set(dataset_ids))
    found = set(Dataset.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise ValidationFailed(f"No such datasets: {', '.join(map(str, missing))}.")
    with transaction.atomic():
        current = set(
            DatasetAssignment.objects.select_for_update()
            .filter(user=user)
            .values_list("dataset_id", flat=True)
        )
        removed = sorted(current - set(wanted))
        added = [pk for pk in wanted if pk not in current]
        DatasetAssignment.objects.filter(user=user, dataset_id__in=removed).delete()
        for dataset_id in removed:
            reviewers_unassigned.send(sender=Dataset, dataset_id=dataset_id, user_ids=[user.pk])
        DatasetAssignment.objects.bulk_create(
            [DatasetAssignment(user=user, dataset_id=pk, assigned_by=assigned_by) for pk in added],
            ignore_conflicts=True,
        )
        if removed or added:
            audit_record(
                actor=assigned_by,
                action="user.datasets_assign",
                target=user,
                before={"datasets": sorted(current)},
                after={"datasets": wanted},
            )
    return wanted
