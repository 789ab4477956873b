"""Schemathesis against the OpenAPI schema, in process (the WSGI app, no network).

Every documented operation gets generated requests (bounded examples), as an admin with a
token; none may answer a server error (5xx).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES_PER_OPERATION = 6


@pytest.mark.django_db
def test_no_operation_answers_a_server_error(admin_user, settings, tmp_path):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hsettings
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from config.wsgi import application

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.Q16_IMPORT_ROOTS = [str(tmp_path / "imports")]
    client = APIClient()
    client.force_login(admin_user)
    raw = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = application
    token = Token.objects.create(user=admin_user).key
    failures: list[str] = []
    operations = 0

    def check(operation):
        @hsettings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.explicit, Phase.generate],
        )
        @given(operation.as_strategy())
        def exercise(case):
            response = case.call(headers={"Authorization": f"Token {token}"})
            if response.status_code >= 500:
                failures.append(
                    f"{operation.label}: {response.status_code} for "
                    f"{case.path_parameters} {case.query} {str(case.body)[:200]}"
                )

        exercise()

    # As Django's test client does: the in-process app must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        for result in schema.get_all_operations():
            operations += 1
            check(result.ok())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert operations > 20
    assert not failures, "\n".join(failures[:20])
