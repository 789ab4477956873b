"""The report as the page's context, as a standalone HTML file and as a PDF.

The standalone file holds everything it shows: its CSS inline, the plots as inline SVG and
the example thumbnails as data URIs, blurred by Pillow unless asked otherwise. The PDF is
WeasyPrint's rendering of that same file (imported here, on request only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from curation.models import Dataset
from labels.models import DatasetReport

from .answer import QUESTION_16, generated_answer
from .examples import embedded_examples, report_examples
from .figures import dataset_report_figures
from .plots import report_plots

STANDALONE_CSS = Path(settings.BASE_DIR) / "static" / "css" / "report_standalone.css"


def report_context(*, dataset: Dataset) -> dict[str, Any]:
    """What every form of the report shows: figures, plots, answers, example images."""
    figures = dataset_report_figures(dataset=dataset)
    saved = DatasetReport.objects.filter(dataset=dataset).first()
    generated = generated_answer(figures)
    return {
        "dataset": dataset,
        "figures": figures,
        "plots": report_plots(figures),
        "question": QUESTION_16,
        "generated_answer": generated,
        "saved": saved,
        "answer": saved.answer_text if saved is not None else generated,
        "examples": report_examples(dataset_id=dataset.pk),
        "histogram_rows": _histogram_rows(figures["histogram"]),
        "made_at": timezone.now(),
    }


def _histogram_rows(histogram: dict[str, Any]) -> list[dict[str, Any]]:
    edges = histogram["bins"]
    return [
        {
            "low": edges[i],
            "high": edges[i + 1],
            "confirmed": histogram["confirmed"][i],
            "rejected": histogram["rejected"][i],
            "unreviewed": histogram["unreviewed"][i],
        }
        for i in range(len(edges) - 1)
    ]


def report_standalone_html(
    *, dataset: Dataset, unblurred: bool = False, for_pdf: bool = False
) -> str:
    context = report_context(dataset=dataset)
    context["examples"] = embedded_examples(context["examples"], blurred=not unblurred)
    context["unblurred"] = unblurred
    context["for_pdf"] = for_pdf
    context["inline_css"] = STANDALONE_CSS.read_text(encoding="utf-8")
    return render_to_string("labels/report_standalone.html", context)


def _import_weasyprint() -> Any:
    """WeasyPrint, imported without its side effect: it sets Pillow's process-wide
    ImageFile.LOAD_TRUNCATED_IMAGES, which would make the web process accept truncated
    images everywhere else (thumbnails, media checks). The flag is put back."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    import weasyprint
    import weasyprint.urls

    ImageFile.LOAD_TRUNCATED_IMAGES = before
    return weasyprint


def report_pdf(*, dataset: Dataset, unblurred: bool = False) -> bytes:
    weasyprint = _import_weasyprint()
    HTML, URLFetcher = weasyprint.HTML, weasyprint.urls.URLFetcher

    html = report_standalone_html(dataset=dataset, unblurred=unblurred, for_pdf=True)
    # The file is self-contained: data URIs only, never the network or the disk.
    fetcher = URLFetcher(allowed_protocols=["data"], timeout=1)
    return HTML(string=html, url_fetcher=fetcher).write_pdf()
