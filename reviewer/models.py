"""Review items (one per flagged image, leased to one reviewer at a time) and verdicts."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from curation.models import Dataset, Image, ScoringRun


class ReviewItem(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        DECIDED = "decided", "Decided"
        # Was flagged, fell below the threshold after a rescore before anyone decided.
        WITHDRAWN = "withdrawn", "Withdrawn"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="review_items")
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="review_item")
    # Score under the run that last touched the item (denormalised for queue ordering).
    score = models.FloatField()
    run = models.ForeignKey(ScoringRun, null=True, on_delete=models.SET_NULL, related_name="+")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    leased_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["dataset", "state", "-score"], name="review_queue_order"),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} image {self.image_id} ({self.state})"


class Decision(models.Model):
    """A reviewer's verdict. Append-only: a new verdict supersedes, never overwrites."""

    class Verdict(models.TextChoices):
        INAPPROPRIATE = "inappropriate", "Confirmed (inappropriate)"
        APPROPRIATE = "appropriate", "Rejected (appropriate)"
        SKIP = "skip", "Skipped"

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="decisions")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="decisions")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="decisions"
    )
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["image", "-created_at"], name="decision_latest")]

    def __str__(self) -> str:
        return f"{self.reviewer_id} {self.verdict} image {self.image_id}"
