"""Every URL of the project, for every role: anonymous, a reviewer not assigned to the dataset,
a reviewer assigned to it, and an admin. The table is data; a URL pattern without an entry
fails `test_every_url_pattern_is_in_the_matrix`.

Statuses: "login" is a redirect to the login page (anonymous HTML); 401 is an anonymous API
request (token authentication first); 403 is a role refusal; 404 is an object outside the
datasets the user may review (answered as if it did not exist). Admin POSTs with an empty
body answer 400: the permission passed and the input was validated, without queueing work.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.test import APIClient

from curation.models import DatasetAssignment

ROLES = ("anonymous", "reviewer_unassigned", "reviewer_assigned", "admin")
LOGIN = "login"


@dataclass(frozen=True)
class Case:
    name: str  # URL name
    method: str
    expect: tuple  # one status per role, in ROLES order
    args: tuple = ()  # World attribute names whose pk fills the URL
    query: str = ""
    data: dict = field(default_factory=dict)
    api: bool = False

    def id(self, role: str) -> str:
        suffix = f"?{self.query}" if self.query else ""
        return f"{role}-{self.method}-{self.name}{suffix}"


def html(name, method, expect, **kw) -> Case:
    return Case(name, method, expect, **kw)


def api(name, method, expect, **kw) -> Case:
    return Case(name, method, expect, api=True, **kw)


#                       anonymous, not assigned, assigned, admin
ADMIN_ONLY_HTML = (LOGIN, 403, 403, 200)
ADMIN_ONLY_FORM = (LOGIN, 403, 403, 400)
ADMIN_ONLY_API = (401, 403, 403, 200)
ADMIN_ONLY_POST = (401, 403, 403, 400)
# Cancel / resume of a finished object: the permission passed, the state refused it (409).
ADMIN_ONLY_STATE_ACTION = (401, 403, 403, 409)
# The same from the browser: a redirect back with the refusal as a flash message.
ADMIN_ONLY_HTML_ACTION = (LOGIN, 403, 403, 302)
ANY_USER_API = (401, 200, 200, 200)
OBJECT_API = (401, 404, 200, 200)

MATRIX: tuple[Case, ...] = (
    # --- HTML pages ----------------------------------------------------------------------
    html("home", "get", (LOGIN, 302, 302, 302)),
    html("login", "get", (200, 200, 200, 200)),
    html("logout", "post", (302, 302, 302, 302)),
    html("logout", "get", (405, 405, 405, 405)),
    html("review", "get", (LOGIN, 200, 200, 200)),
    html("review", "get", (LOGIN, 200, 200, 200), query="dataset={dataset}"),
    html("image-file", "get", (LOGIN, 404, 200, 200), args=("image",)),
    html("image-thumbnail", "get", (LOGIN, 404, 200, 200), args=("image",)),
    html("dataset-list", "get", ADMIN_ONLY_HTML),
    html("dataset-list", "post", ADMIN_ONLY_FORM),
    html("dataset-detail", "get", ADMIN_ONLY_HTML, args=("dataset",)),
    html("dataset-stats", "get", ADMIN_ONLY_HTML, args=("dataset",)),
    html("dataset-run-start", "post", ADMIN_ONLY_FORM, args=("dataset",)),
    html("dataset-train", "post", ADMIN_ONLY_FORM, args=("dataset",)),
    html("dataset-export", "post", ADMIN_ONLY_FORM, args=("dataset",)),
    html("dataset-cancel-import", "post", ADMIN_ONLY_HTML_ACTION, args=("dataset",)),
    html("dataset-resume-import", "post", ADMIN_ONLY_HTML_ACTION, args=("dataset",)),
    html("run-cancel", "post", ADMIN_ONLY_HTML_ACTION, args=("run",)),
    html("run-resume", "post", ADMIN_ONLY_HTML_ACTION, args=("run",)),
    html("prompt-job-cancel", "post", ADMIN_ONLY_HTML_ACTION, args=("job",)),
    html("prompt-job-resume", "post", ADMIN_ONLY_HTML_ACTION, args=("job",)),
    html(
        "dataset-reviewers",
        "post",
        (LOGIN, 403, 403, 302),
        args=("dataset",),
        data={"reviewers": ["{other}"]},
    ),  # fmt: skip
    html("prompt-versions", "get", ADMIN_ONLY_HTML),
    html("prompt-zero-shot", "post", ADMIN_ONLY_FORM),
    html("prompt-import", "post", ADMIN_ONLY_FORM),
    html("hash-bank-list", "get", ADMIN_ONLY_HTML),
    html("hash-bank-list", "post", ADMIN_ONLY_FORM),
    html("hash-bank-detail", "get", ADMIN_ONLY_HTML, args=("bank",)),
    html("hash-bank-detail", "post", ADMIN_ONLY_FORM, args=("bank",)),
    html("hash-bank-rematch", "post", ADMIN_ONLY_HTML_ACTION, args=("bank",)),
    html("hash-bank-delete", "post", ADMIN_ONLY_HTML_ACTION, args=("bank",)),
    html("prompt-activate", "post", (LOGIN, 403, 403, 302), args=("version",)),
    # Not a worse version: the confirmation step sends the admin back to the list.
    html("prompt-activate-confirm", "get", (LOGIN, 403, 403, 302), args=("version",)),
    html("audit-log", "get", ADMIN_ONLY_HTML),
    html("audit-log", "get", (LOGIN, 403, 403, 400), query="before=abc"),
    html("audit-log-export", "get", ADMIN_ONLY_HTML),
    # Review settings page and Users pages (admins). An empty password form generates one.
    html("dataset-review-settings", "get", ADMIN_ONLY_HTML, args=("dataset",)),
    html("dataset-report", "get", ADMIN_ONLY_HTML, args=("dataset",)),
    html("dataset-report-html", "get", ADMIN_ONLY_HTML, args=("dataset",)),
    html("dataset-report-pdf", "get", ADMIN_ONLY_HTML, args=("dataset",)),
    html("dataset-report-answer", "post", ADMIN_ONLY_FORM, args=("dataset",)),
    html("dataset-review-settings", "post", ADMIN_ONLY_FORM, args=("dataset",)),
    html("user-list", "get", ADMIN_ONLY_HTML),
    html("user-list", "post", ADMIN_ONLY_FORM),
    html("user-detail", "get", ADMIN_ONLY_HTML, args=("assigned",)),
    html("user-password", "post", (LOGIN, 403, 403, 200), args=("assigned",)),
    html("user-role", "post", ADMIN_ONLY_FORM, args=("assigned",)),
    html("user-deactivate", "post", ADMIN_ONLY_HTML_ACTION, args=("other",)),
    html("user-reactivate", "post", ADMIN_ONLY_HTML_ACTION, args=("other",)),
    html("user-datasets", "post", ADMIN_ONLY_HTML_ACTION, args=("other",)),
    # --- Curation API (admins) -----------------------------------------------------------
    api("api-config", "get", ANY_USER_API),
    api("api-schema", "get", ANY_USER_API),
    api("api-docs", "get", ANY_USER_API),
    api("api-token", "post", (400, 400, 400, 400)),
    api("api-datasets", "get", ADMIN_ONLY_API),
    api("api-datasets", "post", ADMIN_ONLY_POST),
    api("api-dataset", "get", ADMIN_ONLY_API, args=("dataset",)),
    api("api-dataset-images", "get", ADMIN_ONLY_API, args=("dataset",)),
    api("api-dataset-cancel-import", "post", ADMIN_ONLY_STATE_ACTION, args=("dataset",)),
    # The world's dataset is a finished folder import: an admin may import it again.
    api("api-dataset-reimport", "post", ADMIN_ONLY_API, args=("dataset",)),
    api("api-dataset-resume-import", "post", ADMIN_ONLY_STATE_ACTION, args=("dataset",)),
    api("api-dataset-reviewers", "get", ADMIN_ONLY_API, args=("dataset",)),
    api(
        "api-dataset-reviewers",
        "put",
        ADMIN_ONLY_API,
        args=("dataset",),
        data={"user_ids": ["{other}"]},
    ),  # fmt: skip
    api("api-runs", "get", ADMIN_ONLY_API),
    api("api-runs", "post", ADMIN_ONLY_POST),
    api("api-run", "get", ADMIN_ONLY_API, args=("run",)),
    api("api-run-cancel", "post", ADMIN_ONLY_STATE_ACTION, args=("run",)),
    api("api-run-resume", "post", ADMIN_ONLY_STATE_ACTION, args=("run",)),
    api("api-prompt-versions", "get", ADMIN_ONLY_API),
    api("api-prompt-versions-import", "post", (401, 403, 403, 415)),  # multipart only
    api("api-prompt-version", "get", ADMIN_ONLY_API, args=("version",)),
    api("api-prompt-version-activate", "post", ADMIN_ONLY_API, args=("version",)),
    api("api-prompt-jobs", "get", ADMIN_ONLY_API),
    api("api-prompt-jobs", "post", ADMIN_ONLY_POST),
    api("api-prompt-job", "get", ADMIN_ONLY_API, args=("job",)),
    api("api-prompt-job-cancel", "post", ADMIN_ONLY_STATE_ACTION, args=("job",)),
    api("api-prompt-job-resume", "post", ADMIN_ONLY_STATE_ACTION, args=("job",)),
    api("api-exports", "get", ADMIN_ONLY_API),
    api("api-exports", "post", ADMIN_ONLY_POST),
    api("api-export", "get", ADMIN_ONLY_API, args=("export",)),
    api("api-export-download", "get", ADMIN_ONLY_API, args=("export",)),
    api("api-hash-banks", "get", ADMIN_ONLY_API),
    api("api-hash-banks", "post", (401, 403, 403, 415)),  # multipart only
    api("api-hash-bank", "get", ADMIN_ONLY_API, args=("bank",)),
    api("api-hash-bank", "delete", (401, 403, 403, 204), args=("bank",)),
    api("api-hash-bank-entries", "put", (401, 403, 403, 415), args=("bank",)),
    api("api-hash-bank-matches", "get", ADMIN_ONLY_API, args=("bank",)),
    api("api-dataset-review-stats", "get", ADMIN_ONLY_API, args=("dataset",)),
    api("api-dataset-class-stats", "get", ADMIN_ONLY_API, args=("dataset",)),
    api("api-image-history", "get", ADMIN_ONLY_API, args=("image",)),
    api("api-review-dataset-settings", "get", ADMIN_ONLY_API, args=("dataset",)),
    api("api-review-dataset-settings", "put", ADMIN_ONLY_API, args=("dataset",)),
    # --- Review API (reviewers, over their assigned datasets) -----------------------------
    api("api-review-next", "get", (401, 204, 200, 200)),
    api("api-review-next", "get", OBJECT_API, query="dataset={dataset}"),
    api("api-review-batch", "get", ANY_USER_API),
    api("api-review-batch", "get", OBJECT_API, query="dataset={dataset}"),
    api("api-review-stats", "get", ANY_USER_API),
    api("api-review-stats", "get", OBJECT_API, query="dataset={dataset}"),
    api("api-review-undo", "post", (401, 409, 409, 409)),
    api(
        "api-review-bulk-decision",
        "post",
        ANY_USER_API,
        data={"item_ids": ["{item}"], "verdict": "inappropriate"},
    ),  # fmt: skip
    api("api-review-preferences", "get", ANY_USER_API),
    api("api-review-preferences", "put", ANY_USER_API),
    api(
        "api-review-decision",
        "post",
        (401, 404, 201, 201),
        args=("item",),
        data={"verdict": "inappropriate"},
    ),  # fmt: skip
    api("api-review-release", "post", (401, 404, 204, 204), args=("item",)),
    api("api-review-leases-release", "post", ANY_USER_API),
    # The heartbeat renews the caller's own leases only (none: an empty answer).
    api("api-review-leases-renew", "post", ANY_USER_API, data={"all": True}),
    # Reviewer protection: reveal records (their own reviewer only) and the Exposure page.
    api("api-review-reveals", "post", (401, 404, 201, 201), data={"item_id": "{item}"}),
    # No reveal has the item's id: not found for everyone (ownership: tests/api).
    api("api-review-reveal-end", "post", (401, 404, 404, 404), args=("item",)),
    api("api-review-exposure", "get", ANY_USER_API),
    html("review-exposure", "get", ADMIN_ONLY_HTML),
    html("review-exposure-settings", "post", (LOGIN, 403, 403, 302), args=("assigned",)),
)

# The Django admin site (every URL under django-admin/) requires a staff login; a sample of
# its URLs is checked, and every admin-site URL pattern is covered by that rule.
ADMIN_SITE_NAMESPACE = "admin"
ADMIN_SITE: tuple[Case, ...] = (
    html("admin:index", "get", ("admin-login", "admin-login", "admin-login", 200)),
    html(
        "admin:curation_datasetassignment_changelist",
        "get",
        ("admin-login", "admin-login", "admin-login", 200),
    ),  # fmt: skip
    html(
        "admin:curation_dataset_change",
        "get",
        ("admin-login", "admin-login", "admin-login", 200),
        args=("dataset",),
    ),  # fmt: skip
    html("admin:auth_user_changelist", "get", ("admin-login", "admin-login", "admin-login", 200)),
)


def _walk(patterns, namespace: str = ""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}:{entry.namespace}" if entry.namespace else namespace
            yield from _walk(entry.url_patterns, inner.strip(":"))
        elif isinstance(entry, URLPattern):
            name = entry.name or str(entry.pattern)
            yield f"{namespace}:{name}" if namespace else name


def all_url_names() -> set[str]:
    return set(_walk(get_resolver().url_patterns))


def test_every_url_pattern_is_in_the_matrix():
    names = all_url_names()
    project = {name for name in names if not name.startswith(f"{ADMIN_SITE_NAMESPACE}:")}
    covered = {case.name for case in MATRIX}
    assert project - covered == set(), "URL patterns without an entry in the permission matrix"
    assert covered - project == set(), "matrix entries for URLs that no longer exist"
    assert {case.name for case in ADMIN_SITE} <= names


def _fill(value, world):
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return getattr(world, value[1:-1]).pk
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    return value


def _user(world, role):
    return {
        "anonymous": None,
        "reviewer_unassigned": world.other,
        "reviewer_assigned": world.assigned,
        "admin": world.admin,
    }[role]


def request_as(world, role: str, case: Case):
    client = APIClient() if case.api else Client()
    user = _user(world, role)
    if user is not None:
        client.force_login(user)
    url = reverse(case.name, args=[getattr(world, arg).pk for arg in case.args])
    if case.query:
        url += "?" + case.query.format(**{k: getattr(world, k).pk for k in ("dataset", "item")})
    data = _fill(case.data, world)
    if case.api and case.method in ("post", "put"):
        return getattr(client, case.method)(url, data, format="json")
    return getattr(client, case.method)(url, data)


def _params(cases):
    return [
        pytest.param(role, case, expected, id=case.id(role))
        for case in cases
        for role, expected in zip(ROLES, case.expect, strict=True)
    ]


@pytest.mark.parametrize(("role", "case", "expected"), _params(MATRIX + ADMIN_SITE))
def test_permission_matrix(world, role, case, expected):
    response = request_as(world, role, case)
    if expected == LOGIN:
        assert response.status_code == 302, response.content[:300]
        assert response["Location"].startswith(reverse("login") + "?next="), response["Location"]
    elif expected == "admin-login":
        assert response.status_code == 302, response.content[:300]
        assert response["Location"].startswith(reverse("admin:login")), response["Location"]
    else:
        assert response.status_code == expected, response.content[:500]


# --- Named cases (a failing rule reads as a sentence) ------------------------------------------


def test_denies_reviewer_to_export(world):
    for user in (world.assigned, world.other):
        client = APIClient()
        client.force_login(user)
        assert client.get(reverse("api-export-download", args=[world.export.pk])).status_code == 403
        assert client.post(reverse("api-exports"), {}, format="json").status_code == 403


def test_denies_unassigned_reviewer_the_image_thumbnail_and_item(world):
    client = Client()
    client.force_login(world.other)
    assert client.get(reverse("image-file", args=[world.image.pk])).status_code == 404
    assert client.get(reverse("image-thumbnail", args=[world.image.pk])).status_code == 404
    api_client = APIClient()
    api_client.force_login(world.other)
    response = api_client.post(
        reverse("api-review-decision", args=[world.item.pk]), {"verdict": "appropriate"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def test_unassigned_reviewer_gets_nothing_from_the_queue(world):
    client = APIClient()
    client.force_login(world.other)
    assert client.get(reverse("api-review-next")).status_code == 204
    assert client.get(reverse("api-review-batch")).json() == {"items": []}
    bulk = client.post(
        reverse("api-review-bulk-decision"),
        {"item_ids": [world.item.pk], "verdict": "inappropriate"}, format="json",
    ).json()  # fmt: skip
    assert bulk == {
        "decided": [],
        "conflicts": [{"id": world.item.pk, "detail": "No such review item."}],
    }
    stats = client.get(reverse("api-review-stats")).json()
    assert stats["pending"] == 0


def test_assigned_reviewer_gets_the_item(world):
    client = APIClient()
    client.force_login(world.assigned)
    item = client.get(reverse("api-review-next")).json()
    assert item["id"] == world.item.pk
    assert client.get(reverse("api-review-stats")).json()["pending"] == 1


def test_unassigning_takes_the_dataset_away_at_once(world):
    client = APIClient()
    client.force_login(world.assigned)
    assert client.get(reverse("api-review-next")).status_code == 200
    DatasetAssignment.objects.filter(user=world.assigned).delete()
    assert client.get(reverse("api-review-next")).status_code == 204
    assert client.get(reverse("image-file", args=[world.image.pk])).status_code == 404


def test_undo_does_not_reach_a_dataset_no_longer_assigned(world):
    client = APIClient()
    client.force_login(world.assigned)
    url = reverse("api-review-decision", args=[world.item.pk])
    assert client.post(url, {"verdict": "inappropriate"}, format="json").status_code == 201
    DatasetAssignment.objects.filter(user=world.assigned).delete()
    assert client.post(reverse("api-review-undo")).status_code == 409


def test_review_page_lists_only_assigned_datasets(world):
    from curation.models import Dataset

    hidden = Dataset.objects.create(
        name="secret dataset", source_kind="folder", source="/x", root_path="/x"
    )
    client = Client()
    client.force_login(world.other)
    page = client.get(reverse("review"), {"dataset": world.dataset.pk}).content.decode()
    assert world.dataset.name not in page
    assert hidden.name not in page
    client.force_login(world.assigned)
    page = client.get(reverse("review")).content.decode()
    assert world.dataset.name in page
    assert hidden.name not in page
    client.force_login(world.admin)
    page = client.get(reverse("review")).content.decode()
    assert world.dataset.name in page and hidden.name in page


def test_admin_assigns_reviewers_through_the_api_and_the_page(world):
    client = APIClient()
    client.force_login(world.admin)
    url = reverse("api-dataset-reviewers", args=[world.dataset.pk])
    assert [r["username"] for r in client.get(url).json()["reviewers"]] == ["rita"]
    response = client.put(url, {"user_ids": [world.other.pk]}, format="json")
    assert response.status_code == 200
    assert [r["username"] for r in response.json()["reviewers"]] == ["otto"]
    # Admins are never assigned (they see everything); unknown users are refused.
    assert client.put(url, {"user_ids": [world.admin.pk]}, format="json").status_code == 400
    assert client.put(url, {"user_ids": [99999]}, format="json").status_code == 400
    page = Client()
    page.force_login(world.admin)
    response = page.post(
        reverse("dataset-reviewers", args=[world.dataset.pk]),
        {"reviewers": [world.assigned.pk, world.other.pk]},
    )
    assert response.status_code == 302
    assert set(
        DatasetAssignment.objects.filter(dataset=world.dataset).values_list(
            "user__username", flat=True
        )
    ) == {"rita", "otto"}
    detail = page.get(reverse("dataset-detail", args=[world.dataset.pk])).content.decode()
    assert 'id="reviewers"' in detail and "otto" in detail
