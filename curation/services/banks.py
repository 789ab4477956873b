"""Hash banks: create, replace and delete them, and match datasets' images against them.

A bank is read whole (curation/services/bank_files.py) and written in one transaction, so a
bad file leaves nothing behind. Matching is exact on SHA-256 and within a Hamming distance
on pHash (Q16_BANK_PHASH_DISTANCE) and PDQ (Q16_BANK_PDQ_DISTANCE, images with a PDQ quality
under Q16_BANK_PDQ_MIN_QUALITY left out), computed in NumPy (worker/engine/hash_match.py).

When: at the end of every dataset import (sources/common.py finish_import), before every
scoring run (scoring_run_start), and for every dataset when a bank is created or replaced
(the match_hash_bank task on the cpu queue). A newly matched image's pending review item is
retired through curation.hooks.images_bank_matched, so it never reaches a reviewer.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from curation import dispatch, hooks
from curation.bank_models import HASH_HEX_LENGTHS, BankMatch, HashBank, HashBankEntry, HashKind
from curation.bulk import insert_rows
from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, Image
from curation.services.bank_files import BankFileError, ParsedBank, bank_file_parse
from worker.engine.hash_match import hamming_matches, hex_words

logger = logging.getLogger(__name__)

ENTRY_INSERT_BATCH = 20_000
# Image ids per hook call and per delete statement.
ID_BATCH = 5_000
# On a tie in distance, the stronger evidence is recorded.
_KIND_RANK = {HashKind.SHA256: 0, HashKind.PDQ: 1, HashKind.PHASH: 2}


@dataclass(frozen=True)
class BankMatchReport:
    """What one matching pass of a dataset found: images matched (by any of the banks
    matched), matches added and removed."""

    matched_images: int
    added: int
    removed: int


def _parse(*, data: bytes, file_name: str, kind: str, file_format: str) -> ParsedBank:
    limit = settings.Q16_MAX_BANK_BYTES
    if len(data) > limit:
        raise ValidationFailed(
            f"The bank file is {len(data):,} bytes; the most accepted is {limit:,} "
            "(Q16_MAX_BANK_BYTES)."
        )
    parsed = bank_file_parse(data=data, file_name=file_name, kind=kind, file_format=file_format)
    most = settings.Q16_MAX_BANK_ENTRIES
    if len(parsed.entries) > most:
        raise BankFileError(
            [f"The file holds {len(parsed.entries):,} hashes; a bank holds at most {most:,}."]
        )
    return parsed


def _write_entries(bank: HashBank, parsed: ParsedBank) -> None:
    rows = [
        (bank.pk, entry.kind, entry.value, entry.label, entry.category, entry.source)
        for entry in parsed.entries
    ]
    for start in range(0, len(rows), ENTRY_INSERT_BATCH):
        insert_rows(
            table=HashBankEntry._meta.db_table,
            columns=["bank_id", "kind", "value", "label", "category", "source"],
            pg_types=["bigint", "text", "text", "text", "text", "text"],
            rows=rows[start : start + ENTRY_INSERT_BATCH],
            on_conflict="ON CONFLICT DO NOTHING",
        )
    counts = parsed.counts()
    bank.sha256_count = counts[HashKind.SHA256]
    bank.phash_count = counts[HashKind.PHASH]
    bank.pdq_count = counts[HashKind.PDQ]
    bank.source_format = parsed.format
    bank.matched_at = None
    bank.match_error = ""


def _summary(bank: HashBank, parsed: ParsedBank) -> dict:
    return {
        "format": parsed.format,
        "entries": parsed.counts(),
        "duplicates_merged": parsed.duplicates,
        "skipped_signal_types": parsed.skipped,
        "file": bank.source_name,
    }


def bank_create(
    *,
    name: str,
    data: bytes,
    file_name: str = "",
    kind: str = "",
    file_format: str = "auto",
    description: str = "",
    actor: User | None = None,
) -> tuple[HashBank, ParsedBank]:
    """Read a bank file and store it as a new named bank (all of it or nothing); every
    dataset is matched against it by a background task once it is committed."""
    name = name.strip()
    if not name:
        raise ValidationFailed("A hash bank needs a name.")
    if len(name) > 200:
        raise ValidationFailed("A hash bank's name has at most 200 characters.")
    parsed = _parse(data=data, file_name=file_name, kind=kind, file_format=file_format)
    with transaction.atomic():
        if HashBank.objects.filter(name=name).exists():
            raise StateConflict(f"A hash bank named {name!r} exists already.")
        bank = HashBank(
            name=name,
            description=description.strip(),
            source_name=file_name[:255],
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        bank.save()
        _write_entries(bank, parsed)
        bank.save()
        audit_record(
            actor=actor, action="hash_bank.create", target=bank, after=_summary(bank, parsed)
        )
        dispatch.send_on_commit(dispatch.MATCH_HASH_BANK, [bank.pk])
    return bank, parsed


def bank_entries_replace(
    *,
    bank: HashBank,
    data: bytes,
    file_name: str = "",
    kind: str = "",
    file_format: str = "auto",
    actor: User | None = None,
) -> tuple[HashBank, ParsedBank]:
    """Replace a bank's entries with a new file's (a new release of a shared list); the
    datasets are matched again, and matches the new entries no longer support go."""
    parsed = _parse(data=data, file_name=file_name, kind=kind, file_format=file_format)
    with transaction.atomic():
        bank = HashBank.objects.select_for_update().get(pk=bank.pk)
        before = {"entries": dict(zip(HashKind.values, _counts(bank), strict=True))}
        bank.entries.all().delete()
        bank.source_name = file_name[:255]
        _write_entries(bank, parsed)
        bank.save()
        audit_record(
            actor=actor,
            action="hash_bank.update",
            target=bank,
            before=before,
            after=_summary(bank, parsed),
        )
        dispatch.send_on_commit(dispatch.MATCH_HASH_BANK, [bank.pk])
    return bank, parsed


def _counts(bank: HashBank) -> tuple[int, int, int]:
    return bank.sha256_count, bank.phash_count, bank.pdq_count


def bank_delete(*, bank: HashBank, actor: User | None = None) -> None:
    """Delete a bank and its matches; images it alone matched may be queued again."""
    with transaction.atomic():
        bank = HashBank.objects.select_for_update().get(pk=bank.pk)
        matched = defaultdict(list)
        for dataset_id, image_id in bank.matches.values_list("dataset_id", "image_id"):
            matched[dataset_id].append(image_id)
        audit_record(
            actor=actor,
            action="hash_bank.delete",
            target=bank,
            before={
                "name": bank.name,
                "entries": dict(zip(HashKind.values, _counts(bank), strict=True)),
                "matched_images": sum(len(ids) for ids in matched.values()),
            },
        )
        bank.delete()
        for dataset_id, image_ids in matched.items():
            still = set(
                BankMatch.objects.filter(image_id__in=image_ids).values_list("image_id", flat=True)
            )
            _send(hooks.images_bank_unmatched, dataset_id, [i for i in image_ids if i not in still])


def _send(signal, dataset_id: int, image_ids: list[int]) -> None:
    for start in range(0, len(image_ids), ID_BATCH):
        signal.send(
            sender=HashBank, dataset_id=dataset_id, image_ids=image_ids[start : start + ID_BATCH]
        )


def _valid_hex(values: list[str], kind: str) -> list[int]:
    """Positions of the values that are well-formed hashes of the kind (the image table's
    hashes are written by this app, but an old row may be empty)."""
    length = HASH_HEX_LENGTHS[HashKind(kind)]
    keep = []
    for position, value in enumerate(values):
        if len(value) == length:
            try:
                int(value, 16)
            except ValueError:
                continue
            keep.append(position)
    return keep


def _near(
    *,
    kind: str,
    image_ids: list[int],
    image_values: list[str],
    entry_banks: list[int],
    entry_values: list[str],
    max_distance: int,
) -> list[tuple[int, int, int, str]]:
    """(image id, bank id, distance, entry value) of every image and entry within the distance."""
    if not image_ids or not entry_banks:
        return []
    bits = HASH_HEX_LENGTHS[HashKind(kind)] * 4
    found = hamming_matches(
        hex_words(entry_values, bits=bits), hex_words(image_values, bits=bits), max_distance
    )
    return [
        (image_ids[t], entry_banks[q], int(d), entry_values[q])
        for q, t, d in zip(
            found.query.tolist(), found.target.tolist(), found.distance.tolist(), strict=True
        )
    ]


def bank_matches_compute(
    *, dataset: Dataset, bank_ids: list[int] | None = None
) -> dict[tuple[int, int], tuple[str, int, str]]:
    """(image id, bank id) -> (kind, distance, entry value) of the dataset's matches: the
    closest entry of each bank, SHA-256 before PDQ before pHash on a tie. Reads, writes nothing."""
    entries = HashBankEntry.objects.all()
    if bank_ids is not None:
        entries = entries.filter(bank_id__in=bank_ids)
    by_kind: dict[str, tuple[list[int], list[str]]] = {kind: ([], []) for kind in HashKind.values}
    for bank_id, kind, value in entries.values_list("bank_id", "kind", "value").iterator(
        chunk_size=50_000
    ):
        by_kind[kind][0].append(bank_id)
        by_kind[kind][1].append(value)
    if not any(banks for banks, _ in by_kind.values()):
        return {}
    images = Image.objects.filter(dataset=dataset, status=Image.Status.OK)
    rows = list(
        images.values_list("id", "sha256", "phash", "pdq", "pdq_quality").iterator(
            chunk_size=50_000
        )
    )
    found: list[tuple[int, int, int, str, str]] = []
    sha_banks: dict[str, list[int]] = defaultdict(list)
    for bank_id, value in zip(*by_kind[HashKind.SHA256], strict=True):
        sha_banks[value].append(bank_id)
    for image_id, sha256, _, _, _ in rows:
        for bank_id in sha_banks.get(sha256, ()):
            found.append((image_id, bank_id, 0, sha256, HashKind.SHA256))
    phash_rows = [(row[0], row[2]) for row in rows if row[2]]
    keep = _valid_hex([value for _, value in phash_rows], HashKind.PHASH)
    for hit in _near(
        kind=HashKind.PHASH,
        image_ids=[phash_rows[i][0] for i in keep],
        image_values=[phash_rows[i][1] for i in keep],
        entry_banks=by_kind[HashKind.PHASH][0],
        entry_values=by_kind[HashKind.PHASH][1],
        max_distance=settings.Q16_BANK_PHASH_DISTANCE,
    ):
        found.append((*hit, HashKind.PHASH))
    quality = settings.Q16_BANK_PDQ_MIN_QUALITY
    pdq_rows = [(row[0], row[3]) for row in rows if row[3] and (row[4] or 0) >= quality]
    keep = _valid_hex([value for _, value in pdq_rows], HashKind.PDQ)
    for hit in _near(
        kind=HashKind.PDQ,
        image_ids=[pdq_rows[i][0] for i in keep],
        image_values=[pdq_rows[i][1] for i in keep],
        entry_banks=by_kind[HashKind.PDQ][0],
        entry_values=by_kind[HashKind.PDQ][1],
        max_distance=settings.Q16_BANK_PDQ_DISTANCE,
    ):
        found.append((*hit, HashKind.PDQ))
    best: dict[tuple[int, int], tuple[str, int, str]] = {}
    for image_id, bank_id, distance, value, kind in found:
        key = (image_id, bank_id)
        current = best.get(key)
        if current is None or (distance, _KIND_RANK[HashKind(kind)]) < (
            current[1],
            _KIND_RANK[HashKind(current[0])],
        ):
            best[key] = (str(kind), distance, value)
    return best


def bank_match_dataset(*, dataset: Dataset, bank_ids: list[int] | None = None) -> BankMatchReport:
    """Match the dataset's images against the banks (all, or those given) and record it.

    Matches found are added, matches of those banks no longer found are removed; the review
    app retires the pending items of every matched image and requeues those of images that
    match no bank any more, in the same transaction. Safe to run at any time and twice.
    """
    started = timezone.now()
    if (
        not HashBankEntry.objects.exists()
        and not BankMatch.objects.filter(dataset=dataset).exists()
    ):
        _mark_matched(dataset=dataset, bank_ids=bank_ids, started=started)
        return BankMatchReport(0, 0, 0)  # no banks at all: the common case
    best = bank_matches_compute(dataset=dataset, bank_ids=bank_ids)
    with transaction.atomic():
        # One writer per dataset at a time (an import's end and a bank's task may meet).
        Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
        _mark_matched(dataset=dataset, bank_ids=bank_ids, started=started)
        existing = BankMatch.objects.filter(dataset=dataset)
        if bank_ids is not None:
            existing = existing.filter(bank_id__in=bank_ids)
        current = dict(
            ((image_id, bank_id), match_id)
            for match_id, image_id, bank_id in existing.values_list("id", "image_id", "bank_id")
        )
        # Banks deleted since the computation: their rows are gone, do not add them back.
        live_banks = set(HashBank.objects.values_list("id", flat=True))
        added = [key for key in best if key not in current and key[1] in live_banks]
        stale = [match_id for key, match_id in current.items() if key not in best]
        now = timezone.now()
        insert_rows(
            table=BankMatch._meta.db_table,
            columns=[
                "image_id",
                "bank_id",
                "kind",
                "distance",
                "value",
                "dataset_id",
                "matched_at",
            ],
            pg_types=["bigint", "bigint", "text", "integer", "text", "bigint", "timestamptz"],
            rows=[
                (
                    image_id,
                    bank_id,
                    *best[(image_id, bank_id)][:2],
                    best[(image_id, bank_id)][2],
                    dataset.pk,
                    now,
                )  # fmt: skip
                for image_id, bank_id in added
            ],
            on_conflict="ON CONFLICT DO NOTHING",
        )
        unmatched_candidates = [key[0] for key, match_id in current.items() if key not in best]
        for start in range(0, len(stale), ID_BATCH):
            BankMatch.objects.filter(id__in=stale[start : start + ID_BATCH]).delete()
        matched_images = sorted({image_id for image_id, _ in best})
        _send(hooks.images_bank_matched, dataset.pk, matched_images)
        if unmatched_candidates:
            still = set(
                BankMatch.objects.filter(image_id__in=unmatched_candidates).values_list(
                    "image_id", flat=True
                )
            )
            gone = sorted(set(unmatched_candidates) - still)
            _send(hooks.images_bank_unmatched, dataset.pk, gone)
    if added or stale:
        logger.info(
            "dataset %s: %s bank matches added, %s removed", dataset.pk, len(added), len(stale)
        )
    return BankMatchReport(len(matched_images), len(added), len(stale))


def _mark_matched(*, dataset: Dataset, bank_ids: list[int] | None, started: datetime) -> None:
    """Record that the dataset's matches are current as of `started`: after a match against
    every bank, or against some when every other bank is unchanged since the last full one."""
    if bank_ids is not None:
        last = Dataset.objects.filter(pk=dataset.pk).values_list("banks_matched_at", flat=True)
        previous = last.first()
        if (
            previous is None
            or HashBank.objects.exclude(pk__in=bank_ids).filter(updated_at__gt=previous).exists()
        ):
            return
    Dataset.objects.filter(pk=dataset.pk).update(banks_matched_at=started)
    dataset.banks_matched_at = started


def bank_matches_current(*, dataset: Dataset) -> bool:
    """Whether the dataset was matched against every bank since any of them last changed."""
    matched_at = (
        Dataset.objects.filter(pk=dataset.pk).values_list("banks_matched_at", flat=True).first()
    )
    if matched_at is None:
        return False
    return not HashBank.objects.filter(updated_at__gt=matched_at).exists()


def bank_match_dataset_task(*, dataset_id: int) -> int:
    """A dataset's match against every bank, queued when its import finishes (outside the
    import's transaction: a large bank takes minutes); returns the images matched."""
    dataset = Dataset.objects.filter(pk=dataset_id).first()
    if dataset is None:
        return 0
    return bank_match_dataset(dataset=dataset).matched_images


def bank_match_all_datasets(*, bank_id: int) -> int:
    """Match every dataset against one bank (after it was created or replaced); returns the
    images matched. A bank deleted meanwhile is left alone."""
    if not HashBank.objects.filter(pk=bank_id).exists():
        return 0
    total = 0
    for dataset in Dataset.objects.order_by("id"):
        total += bank_match_dataset(dataset=dataset, bank_ids=[bank_id]).matched_images
    HashBank.objects.filter(pk=bank_id).update(matched_at=timezone.now(), match_error="")
    return total


def bank_match_fail(*, bank_id: int, reason: str) -> None:
    HashBank.objects.filter(pk=bank_id).update(match_error=reason[:2000])


def bank_match_requeue(*, bank: HashBank, actor: User | None = None) -> None:
    """Match every dataset against the bank again (after a failure, or settings changed)."""
    HashBank.objects.filter(pk=bank.pk).update(matched_at=None, match_error="")
    audit_record(actor=actor, action="hash_bank.match", target=bank)
    dispatch.send_on_commit(dispatch.MATCH_HASH_BANK, [bank.pk])
