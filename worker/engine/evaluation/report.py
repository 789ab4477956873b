"""The protocol's outputs: the paper-shaped terminal table and the two CSV files."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from .results import METRICS, MethodSummary, ProtocolResult

__all__ = ["format_table", "write_protocol_csvs"]

_HEADERS = {"accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1"}


def format_table(summary: Sequence[MethodSummary], *, with_std: bool = True) -> str:
    """The paper-shaped table: one row per method, metrics as ``mean ± std`` in percent."""
    cells: list[list[str]] = []
    for row in summary:
        values = []
        for metric in METRICS:
            text = f"{100 * row.mean[metric]:.2f}"
            if with_std:
                text += f" ± {100 * row.std[metric]:.2f}"
            values.append(text)
        cells.append([row.method, *values])
    header = ["method", *(_HEADERS[m] + " (%)" for m in METRICS)]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def line(parts: Sequence[str]) -> str:
        first = parts[0].ljust(widths[0])
        rest = "  ".join(p.rjust(w) for p, w in zip(parts[1:], widths[1:], strict=True))
        return f"{first}  {rest}"

    rule = "-" * len(line(header))
    return "\n".join([line(header), rule, *(line(c) for c in cells)])


def _fraction_cell(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction:g}"


def write_protocol_csvs(result: ProtocolResult, folder: str | Path) -> tuple[Path, Path]:
    """Write ``splits.csv`` (one row per method and split) and ``summary.csv`` into ``folder``.

    Metrics are fractions in [0, 1] (not percent), as computed.

    Returns:
        The two paths.
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    splits_path = out / "splits.csv"
    with splits_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        counts = ("tp", "fp", "tn", "fn")
        writer.writerow(
            ["method", "kind", "fraction_percent", "split", "n_train", "n_test", *METRICS, *counts]
        )
        for r in result.splits:
            writer.writerow(
                [
                    r.method,
                    r.kind,
                    _fraction_cell(r.fraction),
                    r.split,
                    r.n_train,
                    r.n_test,
                    *(f"{r.metrics[m]:.6f}" for m in METRICS),
                    *(int(r.metrics[c]) for c in counts),
                ]
            )
    summary_path = out / "summary.csv"
    with summary_path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            [
                "method",
                "kind",
                "fraction_percent",
                "splits",
                *(f"{m}_{stat}" for m in METRICS for stat in ("mean", "std")),
            ]
        )
        for s in result.summary:
            writer.writerow(
                [
                    s.method,
                    s.kind,
                    _fraction_cell(s.fraction),
                    s.n_splits,
                    *(f"{v:.6f}" for m in METRICS for v in (s.mean[m], s.std[m])),
                ]
            )
    return splits_path, summary_path
