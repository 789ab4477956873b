"""The API token endpoint, under the same login lockout as the login page (django-axes).

DRF's AuthTokenSerializer calls django.contrib.auth.authenticate() with the request, so the
axes backend (first in AUTHENTICATION_BACKENDS) refuses a locked-out username and address
and every failure is counted. authenticate() swallows the refusal (the serializer would
report bad credentials); axes flags the request instead, and this view answers 429 like the
login page. A token issued means a successful login: it resets the failure count too.
An expired token is replaced by a new one (curation/api/authentication.py).
"""

from __future__ import annotations

from axes.exceptions import AxesBackendPermissionDenied
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from curation.services.tokens import api_token_issue

LOCKED_OUT = "Too many failed login attempts: this account is locked for a while."


def _locked_out(request: Request) -> bool:
    return bool(
        request.__dict__.get("axes_locked_out")
        or getattr(request._request, "axes_locked_out", False)
    )


class ObtainAuthTokenApi(ObtainAuthToken):
    def post(self, request: Request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AxesBackendPermissionDenied:
            return self._refused()
        except ValidationError:
            if _locked_out(request):
                return self._refused()
            raise
        user = serializer.validated_data["user"]
        # A token issued is a successful login: axes resets the failure count (and Django
        # records last_login), as django.contrib.auth.login() does on the login page.
        user_logged_in.send(sender=user.__class__, request=request, user=user)
        token = api_token_issue(user=user)
        return Response({"token": token.key})

    def _refused(self) -> Response:
        return Response({"detail": LOCKED_OUT}, status=settings.AXES_HTTP_RESPONSE_CODE)


obtain_auth_token = ObtainAuthTokenApi.as_view()
