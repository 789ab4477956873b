"""Review items (one per flagged or audited image, leased to one reviewer at a time), verdicts,
their retractions, per-dataset review settings and per-reviewer preferences."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from curation.models import Dataset, Image, PromptJob, PromptPolicy, PromptVersion, ScoringRun

# The default taxonomy of confirming verdicts: what the Q16 paper found in ImageNet and SMID.
DEFAULT_CATEGORIES = [
    "weapons",
    "violence and gore",
    "dead or harmed animals",
    "nudity and sexual content",
    "hateful symbols and text",
    "self-harm",
    "other",
]

# Keyboard actions of the review screen and their default keys (one key per action; a second
# default key for the same move is its own `*_alt` action). A key is a KeyboardEvent.key value
# (" " is Space), optionally prefixed "Shift+". The `*_near` actions give the verdict to the
# item's near-duplicates too.
DEFAULT_KEYMAP = {
    "confirm": "c",
    "reject": "r",
    "skip": "s",
    "undo": "u",
    "reveal": "v",
    "next": "j",
    "prev": "k",
    "toggle_view": "g",
    "help": "?",
    **{f"category_{n}": str(n) for n in range(1, 10)},
    "confirm_near": "Shift+c",
    "reject_near": "Shift+r",
    **{f"category_{n}_near": f"Shift+{n}" for n in range(1, 10)},
    "next_alt": "ArrowRight",
    "prev_alt": "ArrowLeft",
    "grid_down": "ArrowDown",
    "grid_up": "ArrowUp",
    "grid_select": "x",
    "grid_select_alt": " ",
    "grid_open": "Enter",
    "grid_clear": "Escape",
    # The single view's image: zoom, back to the whole image, the full-window view, panning
    # a zoomed image (Shift + arrows; in the grid, Shift + arrows still move).
    "zoom_in": "+",
    "zoom_out": "-",
    "zoom_fit": "0",
    "full_view": "f",
    "pan_left": "Shift+ArrowLeft",
    "pan_right": "Shift+ArrowRight",
    "pan_up": "Shift+ArrowUp",
    "pan_down": "Shift+ArrowDown",
}


# At most half of a queue is audit items: the flagged images stay the reviewers' main work.
MAX_AUDIT_SHARE = 0.5


def default_categories() -> list[str]:
    return list(DEFAULT_CATEGORIES)


def default_keymap() -> dict[str, str]:
    return dict(DEFAULT_KEYMAP)


class ReviewItem(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", "Waiting for review"
        DECIDED = "decided", "Decided"
        # Reached the required number of verdicts, and they disagree: an admin adjudicates.
        DISPUTED = "disputed", "Disputed"
        # Was flagged, fell below the threshold after a rescore before anyone decided.
        WITHDRAWN = "withdrawn", "Withdrawn"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="review_items")
    image = models.OneToOneField(Image, on_delete=models.CASCADE, related_name="review_item")
    # Score under the run that last touched the item (denormalised for queue ordering).
    score = models.FloatField()
    # |score - run.threshold|: distance to the decision boundary (the "uncertain" queue order).
    margin = models.FloatField(default=0.0)
    run = models.ForeignKey(ScoringRun, null=True, on_delete=models.SET_NULL, related_name="+")
    # A random sample of images below the threshold, reviewed to estimate what the model misses.
    is_audit = models.BooleanField(default=False)
    # An image below the threshold picked for being near the decision boundary (the uncertain
    # and learn queues, over the whole dataset): kept pending by rescores, never an audit item.
    is_uncertain = models.BooleanField(default=False, db_default=False)
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
            # The flagged queue heads, per dataset and across datasets, by score and by margin.
            models.Index(
                fields=["dataset", "-score", "id"],
                condition=Q(state="pending", is_audit=False),
                name="review_pending_score",
            ),
            models.Index(
                fields=["-score", "id"],
                condition=Q(state="pending", is_audit=False),
                name="review_pending_score_all",
            ),
            models.Index(
                fields=["dataset", "margin", "id"],
                condition=Q(state="pending", is_audit=False),
                name="review_pending_margin",
            ),
            models.Index(
                fields=["dataset", "id"],
                condition=Q(is_audit=True),
                name="review_audit_items",
            ),
        ]

    def __str__(self) -> str:
        return f"item {self.pk} image {self.image_id} ({self.state})"


class Decision(models.Model):
    """A reviewer's verdict. Append-only: a new verdict supersedes, never overwrites;
    undo appends a DecisionRetraction instead of deleting."""

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
    # One of the dataset's categories, on confirming verdicts only.
    category = models.CharField(max_length=100, blank=True)
    # The decision this one copies (an identical image, or a near-duplicate the reviewer chose).
    propagated_from = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="propagated"
    )
    # An admin's verdict that settles a disputed item (or overrules a decided one).
    is_adjudication = models.BooleanField(default=False)
    # A reviewer's verdict on an item that was already decided (the "Decided (second look)"
    # queue): it counts for agreement, and disputes the item when it disagrees.
    is_second_look = models.BooleanField(default=False)
    # Shared by the decisions of one bulk verdict (grid view), so that undo retracts them all.
    bulk_action = models.UUIDField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(fields=["image", "-created_at"], name="decision_latest"),
            models.Index(fields=["reviewer", "item"], name="decision_reviewer_item"),
            models.Index(fields=["reviewer", "-created_at"], name="decision_reviewer_recent"),
            models.Index(
                fields=["reviewer", "bulk_action"],
                condition=Q(bulk_action__isnull=False),
                name="decision_bulk_action",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.reviewer_id} {self.verdict} image {self.image_id}"


class DecisionRetraction(models.Model):
    """Undo of a decision: appended, the decision stays in the history but no longer counts."""

    decision = models.OneToOneField(Decision, on_delete=models.CASCADE, related_name="retraction")
    retracted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"retraction of decision {self.decision_id}"


class ReviewSettings(models.Model):
    """Per-dataset review rules; created with the defaults the first time they are read."""

    dataset = models.OneToOneField(
        Dataset, on_delete=models.CASCADE, related_name="review_settings"
    )
    required_verdicts = models.PositiveSmallIntegerField(
        default=1, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    near_duplicate_distance = models.PositiveSmallIntegerField(
        default=6, validators=[MaxValueValidator(32)]
    )
    categories = models.JSONField(default=default_categories)
    # Share of what the score and uncertain queues serve that is audit items (random images
    # below the threshold, to estimate what the model misses); 0 = only the audit mode audits.
    audit_share = models.FloatField(
        default=0.0, validators=[MinValueValidator(0.0), MaxValueValidator(MAX_AUDIT_SHARE)]
    )
    # Share of the learn queue's items that come from the uncertain queue (the rest: highest
    # score first).
    learn_uncertain_share = models.FloatField(
        default=0.5, validators=[MinValueValidator(0.0), MaxValueValidator(1.0)]
    )
    # The uncertain queue skips images nearly identical (embedding cosine) to one it already
    # picked, so that one cluster of near-copies does not fill it.
    uncertain_diverse = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "review settings"

    def __str__(self) -> str:
        return f"review settings of {self.dataset_id}"

    # The prompt policy (auto-retrain, pinned version) belongs to curation; the review
    # settings API and page show it next to the review rules, so it reads through here.
    @property
    def prompt_policy(self) -> PromptPolicy:
        cached = getattr(self, "_prompt_policy", None)
        if cached is None:
            cached = PromptPolicy.objects.select_related(
                "pinned_version", "last_retrain_job"
            ).filter(dataset_id=self.dataset_id).first() or PromptPolicy(dataset_id=self.dataset_id)
            self._prompt_policy = cached
        return cached

    @property
    def auto_retrain_every(self) -> int | None:
        return self.prompt_policy.auto_retrain_every

    @property
    def verdicts_since_retrain(self) -> int:
        return self.prompt_policy.verdicts_since_retrain

    @property
    def last_retrain_job(self) -> PromptJob | None:
        return self.prompt_policy.last_retrain_job

    @property
    def last_retrain_job_id(self) -> int | None:
        return self.prompt_policy.last_retrain_job_id

    @property
    def pinned_version(self) -> PromptVersion | None:
        return self.prompt_policy.pinned_version

    @property
    def pinned_version_id(self) -> int | None:
        return self.prompt_policy.pinned_version_id

    def refresh_from_db(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.pop("_prompt_policy", None)
        super().refresh_from_db(*args, **kwargs)


class ReviewerPreferences(models.Model):
    class View(models.TextChoices):
        SINGLE = "single", "Single image"
        GRID = "grid", "Grid"

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_preferences"
    )
    blur_strength = models.PositiveSmallIntegerField(default=24, validators=[MaxValueValidator(64)])
    greyscale = models.BooleanField(default=True)
    # Remind the reviewer to take a break after this many images; 0 = never.
    break_every = models.PositiveIntegerField(default=200)
    keymap = models.JSONField(default=default_keymap)
    default_view = models.CharField(max_length=8, choices=View.choices, default=View.SINGLE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "reviewer preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user_id}"


class Reveal(models.Model):
    """One reveal of an image to a reviewer (the reviewer-protection record, issue 11): when it
    was unblurred, in which view, and how long it stayed revealed (set when it is hidden)."""

    class View(models.TextChoices):
        SINGLE = "single", "Single image"
        GRID = "grid", "Grid tile"
        FULL_SIZE = "full-size", "Full size"

    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="reveals"
    )
    # Kept when the image or its item goes (a dataset deleted): the exposure happened.
    image = models.ForeignKey(
        Image, null=True, blank=True, on_delete=models.SET_NULL, related_name="reveals"
    )
    item = models.ForeignKey(
        ReviewItem, null=True, blank=True, on_delete=models.SET_NULL, related_name="reveals"
    )
    view = models.CharField(max_length=10, choices=View.choices, default=View.SINGLE)
    revealed_at = models.DateTimeField()
    hidden_at = models.DateTimeField(null=True, blank=True)
    # Null until hidden; clamped to Q16_EXPOSURE_MAX_REVEAL_SECONDS.
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["reviewer", "-revealed_at"], name="reveal_reviewer_recent"),
            models.Index(fields=["revealed_at"], name="reveal_time"),
        ]

    def __str__(self) -> str:
        return f"reveal {self.pk} of image {self.image_id} to {self.reviewer_id}"


class ExposureSettings(models.Model):
    """A reviewer's own exposure rules, set by an admin; a None field follows the global
    default (settings.Q16_EXPOSURE_*). 0 turns a rule off for this reviewer."""

    reviewer = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="exposure_settings"
    )
    # Most different images revealed per day (server time zone).
    daily_reveal_cap = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(100_000)]
    )
    # Minutes of continuous reviewing after which a break is enforced.
    break_after_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(24 * 60)]
    )
    # Length of that break; a pause this long also ends the continuous reviewing.
    break_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(24 * 60)]
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name_plural = "exposure settings"

    def __str__(self) -> str:
        return f"exposure settings of {self.reviewer_id}"
