"""API token authentication with an expiry: a token works for Q16_TOKEN_TTL_HOURS after it was
issued, then answers 401 "token expired" (and is deleted); POST /api/auth/token/ issues a new
one. Password changes and deactivations delete a user's tokens (curation/signals.py)."""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.utils import timezone
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

TOKEN_EXPIRED = "Token expired: request a new one from POST /api/auth/token/."


def token_expired(token: Token) -> bool:
    lifetime = dt.timedelta(hours=settings.Q16_TOKEN_TTL_HOURS)
    return token.created + lifetime <= timezone.now()


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's `Authorization: Token <key>` authentication, refusing expired tokens."""

    def authenticate_credentials(self, key: str) -> tuple[AbstractBaseUser, Token]:
        user, token = super().authenticate_credentials(key)
        if token_expired(token):
            token.delete()
            raise AuthenticationFailed(TOKEN_EXPIRED)
        return user, token
