"""Shared helpers for the management commands: lookups and terminal progress bars."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import CommandError
from tqdm import tqdm

from curation.models import Dataset, PromptVersion


def resolve_dataset(value: str) -> Dataset:
    """A dataset by id or by name."""
    query = Dataset.objects.filter(pk=int(value)) if value.isdigit() else Dataset.objects.none()
    dataset = query.first() or Dataset.objects.filter(name=value).first()
    if dataset is None:
        raise CommandError(f"No dataset with id or name {value!r}.")
    return dataset


def resolve_prompt_version(value: str) -> PromptVersion:
    if not value.isdigit() or not PromptVersion.objects.filter(pk=int(value)).exists():
        raise CommandError(f"No prompt version with id {value!r}.")
    return PromptVersion.objects.get(pk=int(value))


def follow_row(
    *,
    read: Callable[[], tuple[int, int, str]],
    finished: Callable[[str], bool],
    description: str,
    interval: float = 0.5,
) -> str:
    """Show a progress bar for work a Celery worker does, by polling its database row.

    `read` returns (processed, total, state); returns the final state.
    """
    with tqdm(desc=description, unit="img") as bar:
        while True:
            processed, total, state = read()
            bar.total = total or None
            bar.n = processed
            bar.set_postfix_str(state)
            bar.refresh()
            if finished(state):
                return state
            time.sleep(interval)
