from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class IsCurationAdmin(BasePermission):
    """Admins (staff users) import, score, train, activate and export."""

    message = "Only admins may do this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


def request_user(request: Request) -> User:
    """The logged-in user behind a request, for the services' `created_by` and the like.

    Only for views whose permissions refuse anonymous requests (IsAuthenticated, the default,
    or IsCurationAdmin): one that got this far anyway is answered 401, never recorded.
    """
    user = request.user
    if not user.is_authenticated:
        raise NotAuthenticated()
    return user
