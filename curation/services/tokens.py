"""API tokens: issuing a user's token (POST /api/auth/token/) and revoking a user's tokens.

Both are recorded in the audit trail against the user (never the key: it is a password).
The expiry itself is checked where tokens are used (curation/api/authentication.py).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from audit.services import audit_record


def _expires_at(token: Token) -> dt.datetime:
    return token.created + dt.timedelta(hours=settings.Q16_TOKEN_TTL_HOURS)


def api_token_issue(*, user: User) -> Token:
    """The user's token: the one they have, or a new one when they have none or it expired
    (a new token is a "token.create" event by the user)."""
    with transaction.atomic():
        token, created = Token.objects.get_or_create(user=user)
        replaced = not created and _expires_at(token) <= timezone.now()
        if replaced:
            token.delete()
            token = Token.objects.create(user=user)
        if created or replaced:
            audit_record(
                actor=user,
                action="token.create",
                target=user,
                after={"expires_at": _expires_at(token).isoformat()},
                details={"replaced_expired_token": True} if replaced else None,
            )
    return token


def api_tokens_revoke(*, user: User, reason: str, actor: User | None = None) -> int:
    """Delete the user's tokens; a "token.revoke" event says why when there was one."""
    with transaction.atomic():
        deleted, _ = Token.objects.filter(user=user).delete()
        if deleted:
            audit_record(
                actor=actor,
                action="token.revoke",
                target=user,
                before={"tokens": deleted},
                after={"tokens": 0},
                details={"reason": reason},
            )
    return deleted
