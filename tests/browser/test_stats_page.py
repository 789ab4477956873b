"""The dataset statistics page in a real browser: SVG plots and tables drawn from the stats API."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from curation.models import Dataset

from .conftest import ADMIN_PASSWORD, login

pytestmark = pytest.mark.browser

# A fixed payload in the API's shape: the plots are checked against known numbers.
PAYLOAD = {
    "run": 7,
    "prompt_version": 3,
    "threshold": 0.5,
    "counts": {
        "scored": 1000,
        "flagged": 120,
        "reviewed": 80,
        "confirmed": 60,
        "rejected": 20,
        "audited": 25,
        "pending": 40,
        "decided": 78,
        "disputed": 2,
        "withdrawn": 0,
    },
    "precision": {
        "estimate": 0.75,
        "low": 0.645,
        "high": 0.832,
        "n": 80,
        "flagged": 120,
        "flagged_covered": 110,
    },  # fmt: skip
    "recall": {"estimate": 0.6, "low": 0.4, "high": 0.8, "n_reviewed": 105, "n_audited": 25},
    "estimator": {"n_audited": 25, "n_weighted": 105, "n_below_reviewed": 0, "method": ""},
    "forecast": {
        "verdicts_per_hour": 20.0,
        "pending": 40,
        "queue_hours": 2.0,
        "learning_curve": {
            "points": 4,
            "ceiling_f1": 0.7,
            "flat_at_verdicts": 400,
            "more_verdicts": 300,
            "note": "power-law fit",
        },
    },  # fmt: skip
    "missed": {
        "rate": 0.04,
        "low": 0.007,
        "high": 0.195,
        "n_audited": 25,
        "unflagged": 880,
        "estimated_missed": 35,
        "estimated_missed_low": 6,
        "estimated_missed_high": 172,
    },
    "histogram": {
        "bins": [round(i / 20, 2) for i in range(21)],
        "confirmed": [0] * 10 + [1, 1, 2, 3, 4, 6, 8, 10, 12, 13],
        "rejected": [0] * 10 + [3, 3, 2, 2, 2, 2, 2, 2, 1, 1],
        "unreviewed": [200, 150, 120, 90, 80, 70, 60, 50, 40, 20, 10, 8, 6, 5, 4, 3, 2, 1, 1, 0],
    },
    "thresholds": [
        {
            "threshold": t / 10,
            "precision": p,
            "precision_low": p - 0.05,
            "precision_high": min(1.0, p + 0.05),
            "recall": r,
            "recall_low": r - 0.1,
            "recall_high": min(1.0, r + 0.02),
            "n_reviewed_above": q // 10,
            "queue_size": q,
        }  # fmt: skip
        for t, p, r, q in [
            (1, 0.30, 1.0, 800),
            (2, 0.35, 1.0, 650),
            (3, 0.42, 0.98, 500),
            (4, 0.55, 0.97, 300),
            (5, 0.75, 0.95, 120),
            (6, 0.80, 0.85, 90),
            (7, 0.86, 0.70, 60),
            (8, 0.90, 0.50, 40),
            (9, 0.95, 0.30, 20),
        ]
    ],
    "throughput": [
        {"reviewer": "rita", "day": "2026-11-26", "verdicts": 30},
        {"reviewer": "sam", "day": "2026-11-26", "verdicts": 12},
        {"reviewer": "rita", "day": "2026-11-27", "verdicts": 25},
        {"reviewer": "sam", "day": "2026-11-28", "verdicts": 13},
    ],
    "agreement": {
        "overall": 0.62,
        "pairs": [{"a": "rita", "b": "sam", "kappa": 0.62, "low": 0.41, "high": 0.8, "n": 14}],
        "fleiss": {"kappa": 0.48, "low": 0.3, "high": 0.66, "n": 9},
    },
    "policy": {
        "auto_retrain_every": 50,
        "verdicts_since_retrain": 12,
        "pinned_version": None,
        "pinned_version_name": None,
        "last_job": {
            "id": 4,
            "state": "succeeded",
            "error": "",
            "created_at": "2026-11-27T10:00:00Z",
            "finished_at": None,
            "result": 5,
            "decision": {"activated": True, "reason": "at least as good"},
        },
    },
}


@pytest.fixture
def admin(transactional_db, django_user_model):
    return django_user_model.objects.create_user(
        username="ada", password=ADMIN_PASSWORD, is_staff=True
    )


@pytest.fixture
def stats_dataset(transactional_db, tmp_path):
    return Dataset.objects.create(
        name="street photos", source_kind=Dataset.SourceKind.FOLDER, source=str(tmp_path),
        root_path=str(tmp_path), state=Dataset.State.READY,
    )  # fmt: skip


def table_rows(page, selector: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"{selector} tbody tr",
        "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent.trim()))",
    )


def test_plots_render_from_the_stats_payload(page, admin, stats_dataset, screenshot):
    login(page, admin.username, ADMIN_PASSWORD)
    page.goto(f"/datasets/{stats_dataset.pk}/")
    stats_url = page.get_attribute("#dataset-stats-link", "href")
    assert stats_url == f"/datasets/{stats_dataset.pk}/stats/"
    page.route(
        lambda url: "/api/" in url and "stats" in url,  # the page's stats API, wherever mounted
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(PAYLOAD)
        ),
    )
    page.click("#dataset-stats-link")
    expect(page.locator("#stats-app")).to_have_attribute("data-state", "ready")

    # Counts, precision and missed content.
    expect(page.locator("#stats-counts [data-key=flagged] .stat-value")).to_have_text("120")
    expect(page.locator("#precision-value")).to_have_text("75.0 %")
    expect(page.locator("#precision-interval-text")).to_contain_text("64.5 % – 83.2 %")
    expect(page.locator("#missed-value")).to_have_text("4.0 %")
    expect(page.locator("#missed-note")).to_contain_text("about 35 inappropriate images missed")

    # Histogram: 20 stacked bars; every non-zero count is one rect carrying its value.
    assert page.locator("#histogram-plot svg[role=img] g.plot-bar-group").count() == 20
    hist = PAYLOAD["histogram"]
    nonzero = sum(1 for key in ("confirmed", "rejected", "unreviewed") for v in hist[key] if v)
    assert page.locator("#histogram-plot rect.plot-bar").count() == nonzero
    confirmed = page.eval_on_selector_all(
        "#histogram-plot rect.plot-series-confirmed", "rs => rs.map(r => Number(r.dataset.value))"
    )
    assert confirmed == [v for v in hist["confirmed"] if v]
    assert table_rows(page, "#histogram-table")[19] == ["0.95–1.00", "13", "1", "0"]

    # Thresholds: three lines (precision, recall, queue size) and the same numbers in the table.
    assert page.locator("#thresholds-plot path.plot-line").count() == 3
    assert page.locator("#thresholds-plot circle.plot-dot").count() == 27
    rows = table_rows(page, "#thresholds-table")
    assert rows == [
        [
            f"{r['threshold']:.2f}",
            f"{r['precision']:.3f}",
            f"{r['precision_low']:.3f} – {r['precision_high']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['recall_low']:.3f} – {r['recall_high']:.3f}",
            str(r["n_reviewed_above"]),
            str(r["queue_size"]),
        ]
        for r in PAYLOAD["thresholds"]
    ]
    expect(page.locator("#recall-value")).to_have_text("60.0 %")
    expect(page.locator("#thresholds-note")).to_contain_text("25 of them audited")
    expect(page.locator("#agreement-fleiss")).to_have_text("0.48")
    expect(page.locator("#forecast-body")).to_contain_text("about 2.0 hours")
    expect(page.locator("#forecast-body")).to_contain_text("about 300 more verdicts")

    # Throughput bars (3 days, 2 reviewers) and the agreement table.
    assert page.locator("#throughput-plot g.plot-bar-group").count() == 3
    assert page.locator("#throughput-plot rect.plot-bar").count() == 4
    expect(page.locator("#agreement-overall")).to_have_text("0.62")
    assert table_rows(page, "#agreement-table") == [["rita", "sam", "0.62", "0.410 – 0.800", "14"]]
    expect(page.locator("#policy-body")).to_contain_text("retrains after every 50 new verdicts")
    expect(page.locator("#policy-body")).to_contain_text("at least as good")
    screenshot("stats-mocked")


def test_stats_page_is_for_admins_only(page, stats_dataset, django_user_model):
    django_user_model.objects.create_user(username="rita", password="review-pass-123")
    login(page, "rita", "review-pass-123")
    response = page.goto(f"/datasets/{stats_dataset.pk}/stats/")
    assert response.status == 403


def test_stats_page_matches_the_api(
    page, admin, django_user_model, transactional_db, tmp_path, screenshot
):
    """Real numbers: verdicts recorded through the backend's services, two reviewers
    overlapping (k = 2), scores of a run; the page's tables say what the API says."""
    from curation.models import Score
    from reviewer.models import ReviewItem
    from reviewer.services.decisions import review_decision_record
    from reviewer.services.settings import review_settings_update

    from .test_review_flow import build_queue

    queue = build_queue(tmp_path, n=12, name="stats set")
    Score.objects.bulk_create(
        Score(run=queue.run, image=item.image, p_inappropriate=item.score) for item in queue.items
    )
    review_settings_update(dataset=queue.dataset, required_verdicts=2, auto_retrain_every=25)
    rita = django_user_model.objects.create_user(username="rita", password="x")
    sam = django_user_model.objects.create_user(username="sam", password="x")
    for index, item in enumerate(queue.items[:8]):
        review_decision_record(
            item_id=item.pk, reviewer=rita, verdict="inappropriate" if index < 5 else "appropriate"
        )
        if index < 6:
            review_decision_record(
                item_id=item.pk, reviewer=sam,
                verdict="inappropriate" if index % 2 == 0 else "appropriate",
            )  # fmt: skip
    assert ReviewItem.objects.filter(dataset=queue.dataset, state="disputed").exists()

    login(page, admin.username, ADMIN_PASSWORD)
    page.goto(f"/datasets/{queue.dataset.pk}/stats/")
    expect(page.locator("#stats-app")).to_have_attribute("data-state", "ready")
    api = page.request.get(page.get_attribute("#stats-app", "data-stats-url")).json()

    for key, value in api["counts"].items():
        expect(page.locator(f"#stats-counts [data-key={key}] .stat-value")).to_have_text(
            f"{value:,}"
        )

    def cell(value, digits=3):
        return "—" if value is None else f"{value:.{digits}f}"

    assert table_rows(page, "#thresholds-table") == [
        [
            f"{r['threshold']:.2f}",
            cell(r["precision"]),
            "—"
            if r["precision_low"] is None
            else f"{r['precision_low']:.3f} – {r['precision_high']:.3f}",
            cell(r["recall"]),
            "—" if r["recall_low"] is None else f"{r['recall_low']:.3f} – {r['recall_high']:.3f}",
            f"{r['n_reviewed_above']:,}",
            f"{r['queue_size']:,}",
        ]
        for r in api["thresholds"]
    ]
    hist = api["histogram"]
    assert [row[1:] for row in table_rows(page, "#histogram-table")] == [
        [str(c), str(r), str(u)]
        for c, r, u in zip(hist["confirmed"], hist["rejected"], hist["unreviewed"], strict=True)
    ]
    nonzero = sum(1 for key in ("confirmed", "rejected", "unreviewed") for v in hist[key] if v)
    assert page.locator("#histogram-plot rect.plot-bar").count() == nonzero > 0
    assert page.locator("#thresholds-plot path.plot-line").count() >= 2
    pairs = api["agreement"]["pairs"]
    assert [(p["a"], p["b"], p["n"]) for p in pairs] == [("rita", "sam", 6)]
    assert table_rows(page, "#agreement-table") == [
        [
            p["a"],
            p["b"],
            f"{p['kappa']:.2f}" if p["kappa"] is not None else "—",
            "—" if p["low"] is None else f"{p['low']:.3f} – {p['high']:.3f}",
            str(p["n"]),
        ]  # fmt: skip
        for p in pairs
    ]
    precision = api["precision"]
    if precision["estimate"] is not None:
        expect(page.locator("#precision-value")).to_have_text(
            f"{precision['estimate'] * 100:.1f} %"
        )
    assert page.locator("#throughput-plot rect.plot-bar").count() == len(api["throughput"])
    expect(page.locator("#policy-body")).to_contain_text("retrains after every 25 new verdicts")
    screenshot("stats-real")
