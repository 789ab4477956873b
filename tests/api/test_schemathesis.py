"""Schemathesis against the OpenAPI schema, in process (the WSGI app, no network).

Every documented operation gets generated requests (bounded examples), as an admin with a
token; none may answer a server error (5xx). Schema-valid data alone never tries what broke
the API before (issue 9), so each operation also gets, once, every integer it takes (path,
query, JSON/form body fields, arrays of them) replaced in turn by HOSTILE_INTEGERS: bigger
than a bigint, far bigger, and digits that are not ASCII ("²" passes str.isdigit(), "١٢"
passes int()).
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")

EXAMPLES_PER_OPERATION = 6
HOSTILE_INTEGERS = (2**63, 10**20, "²", "١٢", -1)


def _resolve(raw: dict, schema: dict) -> dict:
    while isinstance(schema, dict) and "$ref" in schema:
        node = raw
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    return schema if isinstance(schema, dict) else {}


def _is_integer(raw: dict, schema: dict) -> bool:
    return _resolve(raw, schema).get("type") == "integer"


def integer_slots(raw: dict, path: str, method: str) -> list[tuple[str, str, bool]]:
    """(where, name, is_array) for each integer the operation takes: a path or query
    parameter, or a body field (an integer or an array of integers)."""
    item = raw["paths"][path]
    operation = item[method.lower()]
    slots = [
        (param["in"], param["name"], False)
        for param in [*item.get("parameters", []), *operation.get("parameters", [])]
        if param["in"] in ("path", "query") and _is_integer(raw, param.get("schema", {}))
    ]
    for content in operation.get("requestBody", {}).get("content", {}).values():
        properties = _resolve(raw, content.get("schema", {})).get("properties", {})
        for name, field in properties.items():
            field = _resolve(raw, field)
            if _is_integer(raw, field):
                slots.append(("body", name, False))
            elif field.get("type") == "array" and _is_integer(raw, field.get("items", {})):
                slots.append(("body", name, True))
    return sorted(set(slots))


@pytest.mark.django_db
def test_no_operation_answers_a_server_error(admin_user, settings, tmp_path):
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hsettings
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from config.wsgi import application
    from reviewer.models import ReviewItem
    from tests.reviewer.factories import make_dataset

    settings.MEDIA_ROOT = tmp_path / "media"
    settings.Q16_IMPORT_ROOTS = [str(tmp_path / "imports")]
    client = APIClient()
    client.force_login(admin_user)
    raw = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schema = schemathesis.openapi.from_dict(raw)
    schema.app = application
    token = Token.objects.create(user=admin_user).key
    # Rows for the path ids of the hostile requests, so that they get past "not found" and
    # reach the query and body parameters.
    dataset, run, images = make_dataset([0.9, 0.8])
    known_ids = {
        "dataset_id": dataset.pk,
        "run_id": run.pk,
        "version_id": run.prompt_version_id,
        "image_id": images[0].pk,
        "item_id": ReviewItem.objects.filter(dataset=dataset).values_list("pk", flat=True)[0],
    }
    failures: list[str] = []
    operations = 0
    hostile_sent = 0

    def call(operation, case, what: str) -> None:
        response = case.call(headers={"Authorization": f"Token {token}"})
        if response.status_code >= 500:
            failures.append(
                f"{operation.label}: {response.status_code} for {what} "
                f"{case.path_parameters} {case.query} {str(case.body)[:200]}"
            )

    def hostile(operation, case) -> int:
        """Send the case again with each integer replaced by each hostile value."""
        sent = 0
        generated_path = dict(case.path_parameters)
        case.path_parameters.update(
            {name: known_ids[name] for name in generated_path if name in known_ids}
        )
        for where, name, is_array in integer_slots(raw, operation.path, operation.method):
            container = {"path": case.path_parameters, "query": case.query}.get(where)
            if where == "body":
                if not isinstance(case.body, dict):
                    continue
                container = case.body
            had, old = name in container, container.get(name)
            for value in HOSTILE_INTEGERS:
                container[name] = [value] if is_array else value
                call(operation, case, f"{where} {name}={value!r}")
                sent += 1
            if had:
                container[name] = old
            else:
                del container[name]
        case.path_parameters.update(generated_path)
        return sent

    def check(operation):
        first = []

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
            call(operation, case, "generated")
            if not first:
                first.append(hostile(operation, case))

        exercise()
        return first[0] if first else 0

    # As Django's test client does: the in-process app must not close the test's connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        for result in schema.get_all_operations():
            operations += 1
            hostile_sent += check(result.ok())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert operations > 20
    assert hostile_sent > 100  # the integer slots were found
    assert not failures, "\n".join(failures[:20])
