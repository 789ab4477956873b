"""Read side of the hash banks: the banks, their matches, and what matched in a dataset."""

from __future__ import annotations

from collections import defaultdict

from django.db.models import Count, QuerySet

from curation.bank_models import BankMatch, HashBank
from curation.models import Dataset, Image


def bank_list() -> QuerySet[HashBank]:
    """Every bank, with the number of images it matched (matched_images) and in how many
    datasets (matched_datasets)."""
    return HashBank.objects.annotate(
        matched_images=Count("matches", distinct=True),
        matched_datasets=Count("matches__dataset", distinct=True),
    ).order_by("name")


def bank_matches(*, bank: HashBank, limit: int = 200) -> list[BankMatch]:
    """A bank's most recent matches with their images and datasets."""
    return list(
        bank.matches.select_related("image", "dataset").order_by("-matched_at", "-id")[:limit]
    )


def bank_matches_by_image(*, dataset: Dataset) -> dict[int, list[str]]:
    """image id -> names of the banks it matched, for the dataset's matched images (exports
    treat them as blocked)."""
    found: dict[int, list[str]] = defaultdict(list)
    for image_id, name in (
        BankMatch.objects.filter(dataset=dataset)
        .order_by("image_id", "bank__name")
        .values_list("image_id", "bank__name")
        .iterator(chunk_size=20_000)
    ):
        found[image_id].append(name)
    return dict(found)


def dataset_bank_matched_count(*, dataset: Dataset) -> int:
    """How many of the dataset's images matched at least one bank."""
    return BankMatch.objects.filter(dataset=dataset).values("image_id").distinct().count()


def dataset_bank_matches(
    *, dataset: Dataset, limit: int = 60
) -> list[tuple[Image, list[BankMatch]]]:
    """The dataset's first matched images, each with its matches (bank, kind, distance)."""
    image_ids = list(
        BankMatch.objects.filter(dataset=dataset)
        .order_by("image_id")
        .values_list("image_id", flat=True)
        .distinct()[:limit]
    )
    matches: dict[int, list[BankMatch]] = defaultdict(list)
    for match in (
        BankMatch.objects.filter(image_id__in=image_ids)
        .select_related("bank")
        .order_by("image_id", "bank__name")
    ):
        matches[match.image_id].append(match)
    images = Image.objects.in_bulk(image_ids)
    return [(images[i], matches[i]) for i in image_ids if i in images]


def image_bank_matches(*, image_id: int) -> list[BankMatch]:
    return list(
        BankMatch.objects.filter(image_id=image_id).select_related("bank").order_by("bank__name")
    )


def dataset_bank_summary(*, dataset: Dataset) -> dict:
    """For the dataset report: whether any bank exists (`available`), the images matched to
    any bank (`matched`) and per bank its name, kinds and images matched here (`banks`)."""
    per_bank = dict(
        BankMatch.objects.filter(dataset=dataset)
        .values_list("bank_id")
        .annotate(n=Count("image_id"))
        .values_list("bank_id", "n")
    )
    banks = [
        {"name": bank.name, "kinds": bank.kinds, "matched": per_bank.get(bank.pk, 0)}
        for bank in HashBank.objects.order_by("name")
    ]
    return {
        "available": bool(banks),
        "banks": banks,
        "matched": dataset_bank_matched_count(dataset=dataset),
    }
