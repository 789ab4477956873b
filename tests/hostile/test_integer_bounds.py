"""Out-of-range integers and Unicode digits, wherever an id or a number comes from a user.

Ids are bigint primary keys (1 to 2**63 - 1). A bigger number, or digits that are not ASCII
("²" passes `str.isdigit()`, "١٢" passes `int()`), used to reach the database and answer 500.
Now a query-string or body id is refused with 400 and a message naming the parameter, and a
URL path id that no row can have answers 404, like any other id that does not exist.
"""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.test import Client
from rest_framework.test import APIClient

from curation.management.cli import resolve_dataset, resolve_prompt_version
from tests.reviewer.factories import make_dataset

pytestmark = pytest.mark.django_db

BIG = 2**63  # one more than the largest bigint
HUGE = 10**20


@pytest.fixture
def data(db):
    dataset, run, images = make_dataset([0.9, 0.8])
    return {"dataset": dataset.pk, "version": run.prompt_version_id, "run": run.pk}


@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.force_login(admin_user)
    return client


@pytest.fixture
def browser(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _url(template: str, data: dict) -> str:
    return template.format(big=BIG, huge=HUGE, **data)


# (method, URL, JSON body or None, the parameter the 400 message names)
API_BAD_INPUT = [
    ("post", "/api/review/release/", {"item_ids": [BIG]}, "item_ids"),
    ("post", "/api/review/release/", {"item_ids": ["١٢"]}, "item_ids"),
    ("post", "/api/review/bulk-decision/", {"item_ids": [BIG], "verdict": "skip"}, "item_ids"),
    ("post", "/api/review/bulk-decision/", {"item_ids": [HUGE], "verdict": "skip"}, "item_ids"),
    ("put", "/api/datasets/{dataset}/reviewers/", {"user_ids": [4, BIG]}, "user_ids"),
    ("get", "/api/datasets/{dataset}/images/?limit=100000000000000000000", None, "limit"),
    ("get", "/api/datasets/{dataset}/images/?limit=%C2%B2", None, "limit"),
    ("get", "/api/datasets/{dataset}/images/?offset={huge}", None, "offset"),
    ("get", "/api/runs/?dataset=99999999999999999999", None, "dataset"),
    ("get", "/api/runs/?dataset=%C2%B2", None, "dataset"),
    ("get", "/api/exports/?dataset=%C2%B2", None, "dataset"),
    ("get", "/api/exports/?dataset={big}", None, "dataset"),
    ("get", "/api/datasets/{dataset}/review-stats/?version=%C2%B2", None, "version"),
    ("get", "/api/datasets/{dataset}/review-stats/?version={huge}", None, "version"),
    ("get", "/api/review/next/?dataset={huge}", None, "dataset"),
    ("get", "/api/review/batch/?dataset={big}", None, "dataset"),
    ("get", "/api/review/stats/?dataset=%D9%A1%D9%A2", None, "dataset"),
    ("post", "/api/runs/", {"dataset": BIG, "prompt_version": "{version}"}, "dataset"),
    ("post", "/api/runs/", {"dataset": "{dataset}", "prompt_version": HUGE}, "prompt_version"),
    ("post", "/api/exports/", {"dataset": BIG, "format": "csv"}, "dataset"),
    ("post", "/api/prompt-jobs/", {"kind": "train", "dataset": BIG}, "dataset"),
    ("post", "/api/prompt-jobs/", {"kind": "train", "parent": HUGE}, "parent"),
    (
        "put",
        "/api/review/datasets/{dataset}/settings/",
        {"pinned_version": BIG},
        "pinned_version",
    ),
    ("put", "/api/review/datasets/{dataset}/settings/", {"auto_retrain_every": BIG}, "auto"),
    ("post", "/api/prompt-jobs/", {"kind": "train", "seed": 2**70}, "seed"),
    ("post", "/api/review/bulk-decision/", {"item_ids": ["١٢"], "verdict": "skip"}, "item_ids"),
    ("post", "/api/review/items/1/decision/", {"verdict": "skip", "apply_to": [BIG]}, "apply_to"),
    ("post", "/api/datasets/", {"name": "long", "folder": "/" + "a" * 1000}, "folder"),
    ("post", "/api/datasets/", {"name": "long", "folder": "/tmp/" + "b/" * 500}, "folder"),
]


def _body(body: dict | None, data: dict) -> dict | None:
    if body is None:
        return None
    return {
        key: int(value.format(**data)) if isinstance(value, str) and "{" in value else value
        for key, value in body.items()
    }


@pytest.mark.parametrize(("method", "url", "body", "param"), API_BAD_INPUT)
def test_api_refuses_bad_ids_with_400(api, data, method, url, body, param):
    response = getattr(api, method)(_url(url, data), _body(body, data), format="json")
    assert response.status_code == 400, response.content[:300]
    payload = response.json()
    assert param in payload or param in str(payload), payload


# URL path ids: too big for any row, so there is nothing at that address.
API_PATH_IDS = [
    ("get", "/api/datasets/{big}/"),
    ("get", "/api/datasets/{big}/images/"),
    ("get", "/api/datasets/{huge}/reviewers/"),
    ("get", "/api/runs/{big}/"),
    ("get", "/api/prompt-versions/{big}/"),
    ("post", "/api/prompt-versions/{big}/activate/"),
    ("get", "/api/prompt-jobs/{big}/"),
    ("get", "/api/exports/{big}/download/"),
    ("post", "/api/review/items/{big}/release/"),
    ("get", "/api/review/datasets/{big}/settings/"),
    ("get", "/api/datasets/{big}/review-stats/"),
    ("get", "/api/images/{huge}/history/"),
]


@pytest.mark.parametrize(("method", "url"), API_PATH_IDS)
def test_api_path_ids_too_big_are_not_found(api, data, method, url):
    response = getattr(api, method)(_url(url, data), format="json")
    assert response.status_code == 404, response.content[:300]
    assert "id" in response.json()["detail"]


HTML_PATH_IDS = [
    "/datasets/{big}/",
    "/datasets/{huge}/stats/",
    "/images/{big}/file/",
    "/images/{big}/thumbnail/",
]


@pytest.mark.parametrize("url", HTML_PATH_IDS)
def test_pages_with_too_big_path_ids_are_not_found(browser, data, url):
    response = browser.get(_url(url, data))
    assert response.status_code == 404


@pytest.mark.parametrize("value", [str(BIG), str(HUGE), "²", "١٢"])
def test_review_page_ignores_a_bad_dataset_filter(browser, data, value):
    response = browser.get("/review/", {"dataset": value})
    assert response.status_code == 200  # the whole queue, as for an unknown dataset


# HTML forms posting ids: the form shows an error (400), never a server error.
HTML_FORMS = [
    ("/datasets/{dataset}/runs/", {"prompt_version": str(BIG), "threshold": "0.5"}),
    ("/datasets/{dataset}/runs/", {"prompt_version": "²", "threshold": "0.5"}),
    ("/datasets/{dataset}/train/", {"parent": str(HUGE)}),
    ("/datasets/{dataset}/reviewers/", {"reviewers": ["4", str(BIG)]}),
    ("/datasets/{dataset}/reviewers/", {"reviewers": ["١٢"]}),
    ("/datasets/", {"name": "long", "folder": "/" + "a" * 1000}),
]


@pytest.mark.parametrize(("url", "form"), HTML_FORMS)
def test_forms_refuse_bad_ids_with_400(browser, data, url, form):
    response = browser.post(_url(url, data), form)
    assert response.status_code == 400
    assert b"errorlist" in response.content or b"error" in response.content


@pytest.mark.parametrize("value", ["²", "١٢", str(BIG), str(HUGE)])
def test_commands_refuse_bad_ids(data, value):
    with pytest.raises(CommandError):
        resolve_dataset(value)
    with pytest.raises(CommandError):
        resolve_prompt_version(value)


def test_good_ids_still_work(api, data):
    assert api.get(f"/api/runs/?dataset={data['dataset']}").status_code == 200
    assert api.get(f"/api/datasets/{data['dataset']}/images/?limit=1&offset=1").json()["results"]
    stats = api.get(f"/api/datasets/{data['dataset']}/review-stats/?version={data['version']}")
    assert stats.status_code == 200
    assert resolve_dataset(str(data["dataset"])).pk == data["dataset"]
    assert resolve_prompt_version(str(data["version"])).pk == data["version"]
