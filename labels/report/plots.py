"""The report's plots: matplotlib (Agg backend) figures written as SVG, one drawing for the
page, the standalone HTML file and the PDF.

matplotlib is imported inside the functions: config.urls loads this module and the web
process should not pay for matplotlib until a report is drawn. Its SVG carries a <style>
element and style="" attributes, which the app's strict CSP (style-src 'self') would block
inline; `inline_svg` rewrites them as SVG presentation attributes, which CSP does not
govern, so the SVG can sit in the page as it is.
"""

from __future__ import annotations

import io
import re
from typing import Any

CONFIRMED = "#d9534f"
REJECTED = "#3f8fd2"
UNREVIEWED = "#b9bec5"
BAR = "#5b6fb5"
INK = "#222831"
WIDTH_IN = 7.2
FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"

_STYLE_ELEMENT = re.compile(r"<style[^>]*>.*?</style>", re.S)
_STYLE_ATTR = re.compile(r'\sstyle="([^"]*)"')
_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)
_FONT_SHORTHAND = re.compile(r"^(?:(italic|oblique|normal)\s+)?(?:(\w+)\s+)?([\d.]+)px\s+(.+)$")


def _attributes(style: str) -> str:
    """ "fill: #fff; stroke-width: 0.8" -> ' fill="#fff" stroke-width="0.8"'."""
    pairs: list[tuple[str, str]] = []
    for declaration in style.split(";"):
        name, sep, value = declaration.partition(":")
        name, value = name.strip(), value.strip().replace('"', "'")
        if not sep or not name:
            continue
        if name == "font":
            match = _FONT_SHORTHAND.match(value)
            if match is None:
                continue
            font_style, weight, size, family = match.groups()
            if font_style:
                pairs.append(("font-style", font_style))
            if weight:
                pairs.append(("font-weight", weight))
            pairs += [("font-size", f"{size}px"), ("font-family", family)]
        else:
            pairs.append((name, value))
    return "".join(f' {name}="{value}"' for name, value in pairs)


def inline_svg(svg: str) -> str:
    """matplotlib's SVG document as an element to put in HTML: no XML prologue, no metadata,
    no <style>, no style attributes (presentation attributes instead)."""
    svg = _PROLOGUE.sub("", svg, count=1)
    svg = _METADATA.sub("", svg)
    svg = _STYLE_ELEMENT.sub("", svg)
    svg = _STYLE_ATTR.sub(lambda m: _attributes(m.group(1)), svg)
    # The browser or WeasyPrint may lack DejaVu Sans (matplotlib's metrics): fall back.
    svg = svg.replace("font-family=\"'DejaVu Sans'\"", f'font-family="{FONT_FAMILY}"')
    # What the removed <style> set for every element, as inherited attributes.
    return svg.replace("<svg ", '<svg stroke-linejoin="round" stroke-linecap="butt" role="img" ', 1)


def _figure(height_in: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, height_in), dpi=72, facecolor="white")
    axes = figure.add_subplot()
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=INK, labelsize=9)
    return figure, axes


def _svg(figure: Any, title: str) -> str:
    import matplotlib

    with matplotlib.rc_context(
        {"svg.fonttype": "none", "svg.hashsalt": "q16-report", "font.family": "DejaVu Sans"}
    ):
        buffer = io.StringIO()
        figure.tight_layout()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    svg = inline_svg(buffer.getvalue())
    return svg.replace("<svg ", f'<svg aria-label="{title}" ', 1)


def histogram_svg(histogram: dict[str, Any], *, threshold: float | None) -> str:
    """Images per score bin, stacked by latest verdict, the run's threshold marked."""
    figure, axes = _figure(3.0)
    edges = histogram["bins"]
    lefts = edges[:-1]
    width = edges[1] - edges[0] if len(edges) > 1 else 0.05
    bottom = [0] * len(lefts)
    for key, colour, label in (
        ("unreviewed", UNREVIEWED, "Not reviewed"),
        ("rejected", REJECTED, "Rejected"),
        ("confirmed", CONFIRMED, "Confirmed"),
    ):
        values = histogram[key]
        axes.bar(
            lefts,
            values,
            width=width * 0.92,
            bottom=bottom,
            align="edge",
            color=colour,
            label=label,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    if threshold is not None:
        axes.axvline(threshold, color=INK, linestyle="--", linewidth=1)
        axes.annotate(
            f"threshold {threshold:g}",
            (threshold, 1),
            xycoords=("data", "axes fraction"),
            xytext=(4, -12),
            textcoords="offset points",
            fontsize=8,
            color=INK,
        )
    axes.set_xlim(0, 1)
    axes.set_xlabel("Score (probability of inappropriate)", color=INK, fontsize=9)
    axes.set_ylabel("Images", color=INK, fontsize=9)
    from matplotlib.ticker import MaxNLocator

    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(0, max(max(bottom), 1) * 1.15)
    # Above the plot: inside it the legend would hide the highest bars.
    axes.legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncols=3)
    return _svg(figure, "Score distribution by verdict")


def _horizontal_bars(
    labels: list[str],
    values: list[float],
    notes: list[str],
    *,
    xlabel: str,
    title: str,
    shares: bool = False,
) -> str:
    figure, axes = _figure(max(1.6, 0.32 * len(labels) + 0.9))
    if not labels:
        axes.text(0.5, 0.5, "Nothing to show yet", ha="center", va="center", color=INK)
        axes.set_axis_off()
        return _svg(figure, title)
    positions = list(range(len(labels)))[::-1]
    axes.barh(positions, values, color=BAR, height=0.66)
    axes.set_yticks(positions, [label[:40] for label in labels])
    top = 1.0 if shares else (max(values) or 1)
    for y, value, note in zip(positions, values, notes, strict=True):
        axes.text(value + top * 0.01, y, note, va="center", fontsize=8, color=INK)
    if shares:
        # Shares: a 0-100 % axis, room on the right for the notes.
        axes.set_xlim(0, 1.3)
        axes.set_xticks([0, 0.25, 0.5, 0.75, 1.0])
        axes.xaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    else:
        from matplotlib.ticker import MaxNLocator

        axes.set_xlim(0, top * 1.25)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(xlabel, color=INK, fontsize=9)
    return _svg(figure, title)


def categories_svg(categories: list[dict[str, Any]]) -> str:
    """Confirmed images per category."""
    return _horizontal_bars(
        [row["category"] for row in categories],
        [row["confirmed"] for row in categories],
        [f"{row['confirmed']} ({row['share']:.0%})" for row in categories],
        xlabel="Confirmed images",
        title="Confirmed images by category",
    )


def classes_svg(classes: list[dict[str, Any]]) -> str:
    """The classes with the highest share of confirmed images."""
    return _horizontal_bars(
        [row["name"] for row in classes],
        [row["share"] for row in classes],
        [f"{row['share']:.0%} ({row['confirmed']} of {row['images']})" for row in classes],
        xlabel="Share of the images confirmed",
        title="Classes with the highest share of confirmed images",
        shares=True,
    )


def estimates_svg(
    precision: dict[str, Any], missed: dict[str, Any], recall: dict[str, Any] | None = None
) -> str:
    """The estimates (reviewer.estimates: inverse-probability weights) with their 95 %
    intervals on one 0-100 % axis."""
    figure, axes = _figure(2.2 if recall is not None else 1.7)
    rows = [
        ("Flagged images offensive", precision["estimate"], precision["low"], precision["high"]),
        ("Offensive below threshold", missed["rate"], missed["low"], missed["high"]),
    ]
    if recall is not None:
        rows.append(("Recall", recall["estimate"], recall["low"], recall["high"]))
    ys = list(range(len(rows) - 1, -1, -1))
    for y, (_label, estimate, low, high) in zip(ys, rows, strict=True):
        if estimate is not None and (low is None or high is None):
            low = high = estimate
        if estimate is None:
            axes.text(0.01, y, "no verdicts yet", va="center", fontsize=8, color=INK)
            continue
        axes.errorbar(
            [estimate],
            [y],
            xerr=[[estimate - low], [high - estimate]],
            fmt="o",
            color=CONFIRMED,
            capsize=4,
        )
        axes.text(
            min(high + 0.015, 0.82),
            y + 0.18,
            f"{estimate:.1%} ({low:.1%}–{high:.1%})",
            fontsize=8,
            color=INK,
        )
    axes.set_yticks(ys, [row[0] for row in rows])
    axes.set_ylim(-0.6, len(rows) - 0.4)
    axes.set_xlim(0, 1)
    axes.xaxis.set_major_formatter(lambda value, _pos: f"{value:.0%}")
    axes.set_xlabel("Estimate with 95 % interval", color=INK, fontsize=9)
    return _svg(figure, "Estimated precision and missed share")


def report_plots(figures: dict[str, Any]) -> dict[str, str]:
    """Every plot of the report, by name, as inline SVG."""
    return {
        "histogram": histogram_svg(figures["histogram"], threshold=figures["threshold"]),
        "estimates": estimates_svg(figures["precision"], figures["missed"], figures.get("recall")),
        "categories": categories_svg(figures["categories"]),
        "classes": classes_svg(figures["classes"]["top"]),
    }
