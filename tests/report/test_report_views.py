"""The report page, its downloads (standalone HTML, PDF) and the edit/publish flow."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image as PILImage

from audit.models import AuditEvent
from labels.models import DatasetReport

pytestmark = pytest.mark.django_db

DATA_URI = re.compile(r'src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture
def staff_client(staff_user) -> Client:
    client = Client()
    client.force_login(staff_user)
    return client


def _urls(dataset_id: int) -> dict[str, str]:
    return {
        name: reverse(f"dataset-report{suffix}", args=[dataset_id])
        for name, suffix in (
            ("page", ""),
            ("answer", "-answer"),
            ("html", "-html"),
            ("pdf", "-pdf"),
        )
    }


def test_staff_only(report_data, reviewer_user):
    urls = _urls(report_data.dataset.pk)
    anonymous = Client()
    for name in ("page", "html", "pdf"):
        response = anonymous.get(urls[name])
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    reviewer = Client()
    reviewer.force_login(reviewer_user)
    for name in ("page", "html", "pdf"):
        assert reviewer.get(urls[name]).status_code == 403
    response = reviewer.post(urls["answer"], {"answer_text": "x", "action": "publish"})
    assert response.status_code == 403
    assert not DatasetReport.objects.exists()


def test_unknown_dataset_is_404(staff_client):
    assert staff_client.get(_urls(999999)["page"]).status_code == 404
    assert staff_client.get(_urls(999999)["pdf"]).status_code == 404


def test_page_is_csp_clean_with_plots_tables_and_links(report_data, staff_client):
    response = staff_client.get(_urls(report_data.dataset.pk)["page"])
    assert response.status_code == 200
    html = response.content.decode()
    assert "style=" not in html and "<style" not in html and "onclick=" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert html.count("<svg") == 4
    for table in ("estimates-table", "histogram-table", "categories-table", "classes-table"):
        assert f'id="{table}"' in html
    assert "guillotine" in html and "no hash banks" in html
    # Example thumbnails come from the protected thumbnail URL, blurred by CSS.
    assert 'class="report-thumb"' in html and "/thumbnail/" in html
    detail = staff_client.get(reverse("dataset-detail", args=[report_data.dataset.pk]))
    assert _urls(report_data.dataset.pk)["page"] in detail.content.decode()
    stats = staff_client.get(reverse("dataset-stats", args=[report_data.dataset.pk]))
    assert _urls(report_data.dataset.pk)["page"] in stats.content.decode()


def _embedded_images(html: str) -> list[np.ndarray]:
    return [
        np.asarray(PILImage.open(io.BytesIO(base64.b64decode(data))).convert("L"), np.float32)
        for data in DATA_URI.findall(html)
    ]


def _sharpness(pixels: np.ndarray) -> float:
    """The steepest step between neighbouring pixels: the pictures' shapes have hard edges,
    which a blur spreads out."""
    return float(max(np.abs(np.diff(pixels, axis=1)).max(), np.abs(np.diff(pixels, axis=0)).max()))


def test_standalone_html_is_self_contained_and_blurred(report_data, staff_client):
    url = _urls(report_data.dataset.pk)["html"]
    response = staff_client.get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    html = response.content.decode()
    # Nothing to fetch: no external URL in src/href/url(), no <link>, no script.
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:|#)""", html)
    assert "url(http" not in html and "<link" not in html and "<script" not in html
    assert html.count("<svg") == 4 and 'id="classes-table"' in html
    blurred = _embedded_images(html)
    assert len(blurred) == 6  # the six confirmed images, by category
    # The original files' bytes are not in the file, and what is embedded is blurred.
    for path in report_data.files.values():
        assert base64.b64encode(path.read_bytes()[:48]).decode()[:60] not in html
    original = np.asarray(
        PILImage.open(report_data.files["gas_mask/0.png"]).convert("L").resize((200, 150)),
        np.float32,
    )
    assert max(_sharpness(p) for p in blurred) < 0.25 * _sharpness(original)

    unblurred_html = staff_client.get(url, {"unblurred": "1"}).content.decode()
    sharp = _embedded_images(unblurred_html)
    assert len(sharp) == 6
    assert min(_sharpness(p) for p in sharp) > 2 * max(_sharpness(p) for p in blurred)


def test_bad_unblurred_value_is_400(report_data, staff_client):
    urls = _urls(report_data.dataset.pk)
    assert staff_client.get(urls["html"], {"unblurred": "yes please"}).status_code == 400
    assert staff_client.get(urls["pdf"], {"unblurred": "2"}).status_code == 400


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) missing")
def test_pdf_pages_show_the_plots(report_data, staff_client, tmp_path):
    response = staff_client.get(_urls(report_data.dataset.pk)["pdf"])
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(response.content)
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert pages
    for page in pages:
        pixels = np.asarray(PILImage.open(page).convert("L"), np.float32)
        assert pixels.std() > 5, f"{page.name} looks blank"
    # The plots' colours (confirmed red, rejected blue) are drawn on the pages.
    rgb = np.concatenate(
        [np.asarray(PILImage.open(p).convert("RGB"), np.int16).reshape(-1, 3) for p in pages]
    )
    red = (rgb[:, 0] > 180) & (rgb[:, 1] < 110) & (rgb[:, 2] < 110)
    blue = (rgb[:, 2] > 170) & (rgb[:, 0] < 100)
    assert red.sum() > 50 and blue.sum() > 50
    keep = tmp_path.parent / "report_pdf_pages"
    keep.mkdir(exist_ok=True)
    shutil.copy(pdf, keep / pdf.name)


def test_edit_and_publish_are_audited(report_data, staff_client, staff_user):
    dataset = report_data.dataset
    urls = _urls(dataset.pk)
    response = staff_client.post(
        urls["answer"], {"answer_text": "  Yes: some images may offend.  ", "action": "save"}
    )
    assert response.status_code == 302
    report = DatasetReport.objects.get(dataset=dataset)
    assert report.answer_text == "Yes: some images may offend."
    assert not report.is_published and report.edited_by == staff_user
    response = staff_client.post(
        urls["answer"], {"answer_text": "Yes: edited, published.", "action": "publish"}
    )
    assert response.status_code == 302
    report.refresh_from_db()
    assert report.is_published and report.published_by == staff_user
    assert report.published_at is not None
    events = list(AuditEvent.objects.filter(action__startswith="report.").order_by("id"))
    assert [e.action for e in events] == ["report.edit", "report.publish"]
    assert events[1].after == {"answer_text": "Yes: edited, published.", "is_published": True}
    assert events[1].before == {
        "answer_text": "Yes: some images may offend.",
        "is_published": False,
    }
    page = staff_client.get(urls["page"]).content.decode()
    assert "Yes: edited, published." in page and "Published by ada" in page
    html = staff_client.get(urls["html"]).content.decode()
    assert "Yes: edited, published." in html


@pytest.mark.parametrize(
    "data, message",
    [
        ({"answer_text": "   ", "action": "save"}, "cannot be empty"),
        ({"answer_text": "x" * 8001, "action": "publish"}, "limited to 8,000"),
        ({"answer_text": "fine", "action": "delete"}, "Unknown action"),
        ({"answer_text": "fine"}, "Unknown action"),
    ],
)
def test_bad_answer_is_400_and_keeps_what_was_typed(report_data, staff_client, data, message):
    response = staff_client.post(_urls(report_data.dataset.pk)["answer"], data)
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    if data["answer_text"].strip() and len(data["answer_text"]) < 100:
        assert data["answer_text"] in html
    assert not DatasetReport.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="report.").exists()


def test_trained_prompt_version_shows_training_and_heldout_metrics(report_data, staff_client):
    from curation.models import PromptVersion

    version = report_data.run.prompt_version
    trained = PromptVersion.objects.create(
        name="trained on photos",
        model_key=version.model_key,
        dim=version.dim,
        vectors=version.vectors,
        source=PromptVersion.Source.TRAINED,
        parent=version,
        metrics={
            "dataset_id": report_data.dataset.pk,
            "n_train": 40,
            "n_heldout": 10,
            "class_counts": {"appropriate": 22, "inappropriate": 28},
            "seconds": 1.5,
            "heldout": {"accuracy": 0.9, "precision": 0.875, "recall": 1.0, "f1": 0.933, "tp": 7.0},
            "parent_heldout": {"accuracy": 0.6, "precision": 0.5, "recall": 0.7, "f1": 0.58},
        },
    )
    report_data.run.prompt_version = trained
    report_data.run.save(update_fields=["prompt_version"])
    html = staff_client.get(_urls(report_data.dataset.pk)["page"]).content.decode()
    assert "trained on photos" in html and "40 verdicts for training, 10 held out" in html
    assert (
        "accuracy 0.900" in html
        and "recall 1.000" in html
        and "tp" not in html.split("Held-out metrics")[1].split("</tr>")[0]
    )
    assert "accuracy 0.600" in html  # the parent on the same held-out verdicts


def test_making_a_pdf_leaves_truncated_images_refused(report_data, staff_client, tmp_path):
    """WeasyPrint turns on Pillow's process-wide LOAD_TRUNCATED_IMAGES when imported; the
    report puts it back, so the same web process still refuses a truncated upload."""
    import io

    from PIL import ImageFile

    from worker.engine.images import InvalidImageError, probe_image_bytes

    assert staff_client.get(_urls(report_data.dataset.pk)["pdf"]).status_code == 200
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    buffer = io.BytesIO()
    noise = np.random.default_rng(3).integers(0, 255, (300, 400, 3), dtype=np.uint8)
    PILImage.fromarray(noise).save(buffer, "JPEG", quality=95)
    whole = buffer.getvalue()
    with pytest.raises(InvalidImageError, match="truncated or corrupt"):
        probe_image_bytes(whole[: len(whole) // 2])
