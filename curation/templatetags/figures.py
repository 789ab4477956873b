"""Template helpers for the admin pages' figures.

{% load figures %}
{% define "flagged" %}         the figure's definition (curation.glossary), for tooltips
{{ worker.chunks|index_ranges }}  [0, 1, 2, 5] -> "0–2, 5"
"""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from curation.glossary import define as glossary_define

register = template.Library()


@register.simple_tag
def define(name: str) -> str:
    return glossary_define(name)


@register.filter
def index_ranges(indexes: Iterable[int]) -> str:
    """Sorted indexes as runs of consecutive numbers (static/js/run_workers.js does the same)."""
    parts: list[str] = []
    ordered = sorted(indexes or [])
    i = 0
    while i < len(ordered):
        first = ordered[i]
        while i + 1 < len(ordered) and ordered[i + 1] == ordered[i] + 1:
            i += 1
        parts.append(str(first) if first == ordered[i] else f"{first}–{ordered[i]}")
        i += 1
    return ", ".join(parts)
