"""The embedding cache: shard files on storage, one narrow reference row per embedding.

A scoring chunk stores what it encoded as one shard (embeddings_store); readers look the
references up and read each needed shard once (cached_vectors). The unique (model key,
hash) reference keeps the dedup across datasets: a file seen before is never encoded again.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat

import numpy as np
from django.db import connection
from django.utils import timezone

from curation.bulk import insert_rows
from curation.models import Embedding, EmbeddingShard
from curation.shard_files import shard_file_read, shard_file_write


def embeddings_store(
    *,
    model_key: str,
    hashes: list[str],
    matrix: np.ndarray,
    run_id: int | None = None,
    chunk_id: int | None = None,
) -> EmbeddingShard | None:
    """Write embeddings (N, D) of the files with these hashes as one shard, and reference them.

    A hash already referenced (another chunk cached it first) keeps its reference; its row
    in the new shard is then simply never read.
    """
    if not hashes:
        return None
    path = shard_file_write(model_key=model_key, hashes=hashes, matrix=matrix)
    shard = EmbeddingShard.objects.create(
        model_key=model_key,
        dim=int(matrix.shape[1]),
        path=path,
        rows=len(hashes),
        run_id=run_id,
        chunk_id=chunk_id,
    )
    created = connection.ops.adapt_datetimefield_value(timezone.now())
    insert_rows(
        table=Embedding._meta.db_table,
        columns=["model_key", "sha256", "shard_id", "row", "created_at"],
        pg_types=["text", "text", "bigint", "bigint", "timestamptz"],
        rows=list(
            zip(
                repeat(model_key),
                hashes,
                repeat(shard.pk),
                range(len(hashes)),
                repeat(created),
                strict=False,
            )
        ),
        on_conflict="ON CONFLICT (model_key, sha256) DO NOTHING",
    )
    return shard


def vectors_from_locations(
    *, locations: Sequence[tuple[str, int] | None], dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) float32 of the (shard path, row) locations, and which rows were found.

    Locations are grouped by shard, so each shard is read once, in one fancy-indexed gather.
    """
    matrix = np.zeros((len(locations), dim), dtype=np.float32)
    ok = np.zeros(len(locations), dtype=bool)
    by_shard: dict[str, tuple[list[int], list[int]]] = {}
    for position, location in enumerate(locations):
        if location is not None:
            targets, rows = by_shard.setdefault(location[0], ([], []))
            targets.append(position)
            rows.append(location[1])
    for path, (targets, rows) in by_shard.items():
        shard = shard_file_read(path)
        if shard.dim != dim:
            raise ValueError(f"embedding shard {path} is {shard.dim}-dimensional, not {dim}")
        matrix[targets] = shard.matrix[rows]
        ok[targets] = True
    return matrix, ok


def cached_vectors(*, model_key: str, dim: int, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    """The cached float32 embedding of each of these hashes that has one."""
    unique = sorted(set(hashes))
    found: list[tuple[str, str, int]] = []
    for start in range(0, len(unique), 1000):
        found += Embedding.objects.filter(
            model_key=model_key, sha256__in=unique[start : start + 1000]
        ).values_list("sha256", "shard__path", "row")
    matrix, _ = vectors_from_locations(locations=[(path, row) for _, path, row in found], dim=dim)
    return {sha: matrix[i] for i, (sha, _, _) in enumerate(found)}


def vectors_from_shard_rows(
    *, shard_ids: np.ndarray, rows: np.ndarray, dim: int
) -> tuple[np.ndarray, np.ndarray]:
    """(N, D) float32 of the embeddings at (shard id, row), and which were found (shard id
    -1: not cached).

    Each shard is read once; a run of consecutive rows (a chunk rescoring the shard its
    first scoring wrote) is one slice copy, anything else one fancy-indexed gather.
    """
    matrix = np.zeros((len(shard_ids), dim), dtype=np.float32)
    ok = shard_ids >= 0
    if not ok.any():
        return matrix, ok
    order = np.argsort(shard_ids, kind="stable")
    sorted_ids = shard_ids[order]
    wanted = np.unique(sorted_ids[sorted_ids >= 0])
    paths = dict(EmbeddingShard.objects.filter(pk__in=wanted.tolist()).values_list("id", "path"))
    starts = np.searchsorted(sorted_ids, wanted, side="left")
    stops = np.searchsorted(sorted_ids, wanted, side="right")
    for shard_id, start, stop in zip(wanted.tolist(), starts.tolist(), stops.tolist(), strict=True):
        targets = order[start:stop]
        if shard_id not in paths:
            ok[targets] = False  # the reference's shard row went away meanwhile
            continue
        shard = shard_file_read(paths[shard_id])
        if shard.dim != dim:
            raise ValueError(
                f"embedding shard {paths[shard_id]} is {shard.dim}-dimensional, not {dim}"
            )
        shard_rows = rows[targets]
        if int(shard_rows.max()) >= shard.count or int(shard_rows.min()) < 0:
            raise ValueError(
                f"embedding shard {paths[shard_id]} has {shard.count} rows, a reference "
                f"points at row {int(shard_rows.max())}"
            )
        first_target, first_row, count = int(targets[0]), int(shard_rows[0]), len(targets)
        if (
            int(targets[-1]) - first_target == count - 1
            and int(shard_rows[-1]) - first_row == count - 1
            and (np.diff(targets) == 1).all()
            and (np.diff(shard_rows) == 1).all()
        ):
            matrix[first_target : first_target + count] = shard.matrix[
                first_row : first_row + count
            ]
        else:
            matrix[targets] = shard.matrix[shard_rows]
    return matrix, ok
