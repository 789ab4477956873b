"""Hash banks: named lists of known-bad content hashes, and the images that match them.

Kept beside curation/models.py (which imports these classes, so Django sees them as the
curation app's models). A bank holds SHA-256 (exact), pHash and PDQ (perceptual) entries;
an image that matches any entry of a bank gets one BankMatch per bank, and a matched image
is never queued for review (reviewer/services/items.py, reviewer/receivers.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class HashKind(models.TextChoices):
    SHA256 = "sha256", "SHA-256 (exact)"
    PHASH = "phash", "pHash (perceptual, 64 bits)"
    PDQ = "pdq", "PDQ (perceptual, 256 bits)"


# Hex digits of each kind's value.
HASH_HEX_LENGTHS = {HashKind.SHA256: 64, HashKind.PHASH: 16, HashKind.PDQ: 64}


class HashBank(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True, default="")
    # What the bank was read from: the uploaded file's name and the format it was parsed as.
    source_name = models.CharField(max_length=255, blank=True, default="")
    source_format = models.CharField(max_length=32, blank=True, default="")
    # Entries per kind, written with the entries (the list page shows them without counting).
    sha256_count = models.PositiveIntegerField(default=0)
    phash_count = models.PositiveIntegerField(default=0)
    pdq_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # When every dataset was last matched against the bank (null: a match is queued or due).
    matched_at = models.DateTimeField(null=True, blank=True)
    # Why the last matching task failed (empty: it did not).
    match_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def kinds(self) -> list[str]:
        counts = {
            HashKind.SHA256: self.sha256_count,
            HashKind.PHASH: self.phash_count,
            HashKind.PDQ: self.pdq_count,
        }
        return [kind.value for kind, count in counts.items() if count]

    @property
    def entry_count(self) -> int:
        return self.sha256_count + self.phash_count + self.pdq_count


class HashBankEntry(models.Model):
    bank = models.ForeignKey(HashBank, on_delete=models.CASCADE, related_name="entries")
    kind = models.CharField(max_length=8, choices=HashKind.choices)
    # Lower-case hex, HASH_HEX_LENGTHS[kind] digits.
    value = models.CharField(max_length=64)
    # What the source said about the hash: its verdict or label, category, where it came from.
    label = models.CharField(max_length=200, blank=True, default="")
    category = models.CharField(max_length=200, blank=True, default="")
    source = models.CharField(max_length=1024, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "kind", "value"], name="bank_entry_unique"),
        ]
        indexes = [models.Index(fields=["kind", "value"], name="bank_entry_kind_value")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class BankMatch(models.Model):
    """An image matched a bank: the closest entry's kind and distance (0 for SHA-256)."""

    image = models.ForeignKey(
        "curation.Image", on_delete=models.CASCADE, related_name="bank_matches"
    )
    bank = models.ForeignKey(HashBank, on_delete=models.CASCADE, related_name="matches")
    kind = models.CharField(max_length=8, choices=HashKind.choices)
    distance = models.PositiveSmallIntegerField(default=0)
    # The entry's value (not a key: entries are replaced whole when a bank is re-imported).
    value = models.CharField(max_length=64, blank=True, default="")
    # The image's dataset, denormalised: the per-dataset counts and lists read one index.
    dataset = models.ForeignKey("curation.Dataset", on_delete=models.CASCADE, related_name="+")
    matched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["image_id", "bank_id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "bank"], name="bank_match_unique"),
        ]
        indexes = [models.Index(fields=["dataset", "image"], name="bank_match_dataset")]

    def __str__(self) -> str:
        return f"image {self.image_id} matched bank {self.bank_id} ({self.kind}, {self.distance})"
