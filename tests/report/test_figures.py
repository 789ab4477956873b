"""The report's numbers against the database, for the constructed dataset of conftest."""

from __future__ import annotations

import pytest

from labels.report.answer import generated_answer
from labels.report.figures import class_field, dataset_report_figures, image_class
from labels.report.plots import report_plots
from reviewer.measures import wilson_interval
from reviewer.selectors.stats import dataset_review_stats

pytestmark = pytest.mark.django_db


def test_counts_categories_classes_and_intervals(report_data):
    figures = dataset_report_figures(dataset=report_data.dataset)
    assert figures["counts"] == {
        "scored": 15,
        "flagged": 7,
        "reviewed": 10,
        "confirmed": 6,
        "rejected": 4,
        "audited": 3,
        "bank_matched": 0,
    }
    assert figures["banks"] == {"available": False, "banks": [], "matched": 0}
    assert figures["categories"] == [
        {"category": "violence and gore", "confirmed": 3, "share": 0.5},
        {"category": "weapons", "confirmed": 3, "share": 0.5},
    ]
    top = figures["classes"]["top"]
    assert [(r["name"], r["images"], r["reviewed"], r["confirmed"]) for r in top] == [
        ("guillotine", 2, 2, 2),
        ("gas_mask", 4, 3, 3),
        ("revolver", 3, 2, 1),
    ]
    assert [r["share"] for r in top] == [1.0, 0.75, pytest.approx(1 / 3)]
    assert figures["classes"]["classes"] == 5  # cat and the top level have no confirmed image

    # The estimates are dataset_review_stats' own (weighted, bootstrap / Wilson), not recomputed.
    stats = dataset_review_stats(dataset=report_data.dataset)
    assert figures["precision"] == stats["precision"]
    assert figures["missed"] == stats["missed"]
    assert figures["histogram"] == stats["histogram"]
    assert figures["recall"] == stats["recall"]
    assert figures["precision"]["n"] == 7
    assert figures["precision"]["low"] <= figures["precision"]["estimate"]
    assert figures["precision"]["estimate"] <= figures["precision"]["high"]
    low, high = wilson_interval(1, 3)
    assert figures["missed"]["n_audited"] == 3
    assert figures["missed"]["low"] == pytest.approx(low)
    assert figures["missed"]["high"] == pytest.approx(high)
    assert figures["prompt_version"]["model_key"] == "m/test"


def test_generated_answer_words_estimates_with_intervals(report_data):
    figures = dataset_report_figures(dataset=report_data.dataset)
    text = generated_answer(figures)
    assert text.startswith("Yes, likely.")
    assert "an estimated 71.4%" in text  # 5 of 7 flagged confirmed
    precision = figures["precision"]
    assert f"{precision['low']:.1%}\u2013{precision['high']:.1%}" in text
    assert "recall" in text
    assert "guillotine (2 of 2)" in text
    assert "No hash banks" in text and "estimates" in text


def test_empty_dataset_has_figures_and_plots(db):
    from curation.models import Dataset

    dataset = Dataset.objects.create(name="empty", source_kind="folder", source="/x")
    figures = dataset_report_figures(dataset=dataset)
    assert figures["counts"]["scored"] == 0 and figures["prompt_version"] is None
    assert generated_answer(figures).startswith("Not yet known.")
    plots = report_plots(figures)
    assert all(svg.startswith("<svg") for svg in plots.values())


def test_plots_are_csp_safe_svg(report_data):
    plots = report_plots(dataset_report_figures(dataset=report_data.dataset))
    assert set(plots) == {"histogram", "estimates", "categories", "classes"}
    for svg in plots.values():
        assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
        assert "style=" not in svg and "<style" not in svg and "<script" not in svg
    assert "guillotine" in plots["classes"] and "weapons" in plots["categories"]


def test_image_class_falls_back_to_first_folder():
    assert image_class("gas_mask/a/b.png") == "gas_mask"
    assert image_class("top.png") == "(top level)"
    assert image_class("x/y.png", "revolver") == "revolver"


@pytest.mark.skipif(class_field() is None, reason="Image.class_label is not in this tree")
def test_class_labels_take_over_from_folders(report_data):
    from curation.models import Image

    Image.objects.filter(dataset=report_data.dataset).update(class_label="")
    for path in ("gas_mask/0.png", "revolver/0.png"):
        Image.objects.filter(pk=report_data.images[path].pk).update(class_label="gas mask")
    classes = dataset_report_figures(dataset=report_data.dataset)["classes"]
    assert classes["source"] == "classes"
    top = {row["name"]: (row["images"], row["confirmed"]) for row in classes["top"]}
    # Labelled images count under their label, the others under their folder.
    assert top["gas mask"] == (2, 2)
    assert top["gas_mask"] == (3, 2) and top["guillotine"] == (2, 2)
    assert "revolver" not in top  # its one confirmed image is labelled "gas mask"
