"""The login lockout's failure count: per username and address, and per username overall.

django-axes compares one count (the largest over AXES_LOCKOUT_PARAMETERS) with one limit
(AXES_FAILURE_LIMIT). Password spraying from many addresses needs a second, higher limit for a
username over all addresses (Q16_USERNAME_FAILURE_LIMIT); this handler reports the per-username
count scaled to AXES_FAILURE_LIMIT, so that it reaches the limit exactly when the username has
had Q16_USERNAME_FAILURE_LIMIT failures. Everything else is django-axes' database handler.
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit, get_lockout_parameters
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


class LockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request: HttpRequest, credentials: dict | None = None) -> int:
        limit = get_failure_limit(request, credentials)
        username_limit = settings.Q16_USERNAME_FAILURE_LIMIT
        parameters = get_lockout_parameters(request, credentials)
        attempts_list = self.get_user_attempts(request, credentials)
        counts = [0]
        for parameter, attempts in zip(parameters, attempts_list, strict=True):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            if parameter in ("username", ["username"]):
                # failures * limit // username_limit >= limit  <=>  failures >= username_limit
                failures = failures * limit // username_limit
            counts.append(failures)
        return max(counts)
