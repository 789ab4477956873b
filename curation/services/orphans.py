"""Stored things nothing refers to any more: embedding shards and the scores of deleted runs.

A shard file is orphaned when its shard row is gone (a crash between the put and the
row, or a row deleted with its references), and a shard row when no embedding reference
points into it (every hash in it was already cached by another chunk, or its references
were removed). Scores carry no database foreign keys (see curation.models.Score), so a
chunk that committed while its dataset was being deleted can leave scores of a run that
no longer exists.

Everything younger than a grace period is left alone: a chunk stores a shard file, then
its row, then its references, and must never find them taken away in between.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

from django.core.files.storage import Storage
from django.db import connection, transaction
from django.utils import timezone

from curation.models import Embedding, EmbeddingShard, Score, ScoringRun
from curation.shard_files import shard_file_delete, shard_storage

logger = logging.getLogger(__name__)

DEFAULT_GRACE = timedelta(hours=1)


@dataclass
class OrphanReport:
    shard_rows: list[str] = field(default_factory=list)  # paths of rows without references
    shard_files: list[str] = field(default_factory=list)  # names of files without a row
    score_runs: list[int] = field(default_factory=list)  # run ids of scores without a run
    scores: int = 0


def orphans_remove(*, grace: timedelta = DEFAULT_GRACE, dry_run: bool = False) -> OrphanReport:
    """Remove (or with dry_run only report) orphaned shard rows, shard files and scores."""
    report = OrphanReport()
    cutoff = timezone.now() - grace
    _remove_unreferenced_shards(cutoff=cutoff, dry_run=dry_run, report=report)
    _remove_files_without_rows(cutoff=cutoff, dry_run=dry_run, report=report)
    _remove_scores_of_deleted_runs(dry_run=dry_run, report=report)
    return report


def _remove_unreferenced_shards(*, cutoff: datetime, dry_run: bool, report: OrphanReport) -> None:
    candidates = (
        EmbeddingShard.objects.filter(created_at__lt=cutoff)
        .exclude(pk__in=Embedding.objects.values("shard_id"))
        .values_list("pk", flat=True)
    )
    for shard_id in list(candidates):
        with transaction.atomic():
            # Locked and checked again: a reference added meanwhile keeps the shard.
            shard = EmbeddingShard.objects.select_for_update().filter(pk=shard_id).first()
            if shard is None or Embedding.objects.filter(shard_id=shard_id).exists():
                continue
            report.shard_rows.append(shard.path)
            if dry_run:
                continue
            shard.delete()
            # The file goes once the row is gone for good; if this fails the file is a
            # file without a row, which the next pass removes.
            transaction.on_commit(partial(_delete_file, shard.path))


def _remove_files_without_rows(*, cutoff: datetime, dry_run: bool, report: OrphanReport) -> None:
    storage = shard_storage()
    handled = set(report.shard_rows)  # their files go with their rows (on commit)
    for name in _shard_file_names(storage, ""):
        if name in handled or EmbeddingShard.objects.filter(path=name).exists():
            continue
        try:
            modified = storage.get_modified_time(name)
        except (FileNotFoundError, OSError):
            continue  # removed meanwhile
        if timezone.is_naive(modified):
            modified = timezone.make_aware(modified)
        if modified >= cutoff:
            continue  # possibly a chunk's shard whose row is not written yet
        report.shard_files.append(name)
        if not dry_run:
            _delete_file(name)


def _shard_file_names(storage: Storage, folder: str) -> list[str]:
    """Every file name under folder on the embeddings storage (model keys are one level)."""
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return []
    prefix = f"{folder}/" if folder else ""
    names = [f"{prefix}{name}" for name in files]
    for sub in folders:
        names += _shard_file_names(storage, f"{prefix}{sub}")
    return names


def _delete_file(name: str) -> None:
    try:
        shard_file_delete(name)
    except OSError:
        logger.warning("could not delete the orphaned embedding shard file %s", name)


def _remove_scores_of_deleted_runs(*, dry_run: bool, report: OrphanReport) -> None:
    score_runs = set(_distinct_score_run_ids())
    live = set(ScoringRun.objects.filter(pk__in=score_runs).values_list("pk", flat=True))
    report.score_runs = sorted(score_runs - live)
    for run_id in report.score_runs:
        scores = Score.objects.filter(run_id=run_id)
        report.scores += scores.count() if dry_run else scores.delete()[0]


def _distinct_score_run_ids() -> list[int]:
    """The run ids present in the score table, without reading all its rows on PostgreSQL:
    a skip scan (one descent of the (run, image) index per run)."""
    table = connection.ops.quote_name(Score._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"WITH RECURSIVE runs(id) AS ((SELECT min(run_id) FROM {table}) UNION ALL "
                f"SELECT (SELECT min(run_id) FROM {table} WHERE run_id > runs.id) FROM runs "
                "WHERE runs.id IS NOT NULL) SELECT id FROM runs WHERE id IS NOT NULL"
            )
        else:
            cursor.execute(f"SELECT DISTINCT run_id FROM {table}")
        return [row[0] for row in cursor.fetchall()]
