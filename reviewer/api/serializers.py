"""Output and query serializers the review API shares."""

from __future__ import annotations

import posixpath

from django.urls import reverse
from drf_spectacular.utils import (
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.request import Request

from curation.api.ids import IdField
from curation.api.permissions import request_user
from curation.selectors import datasets_visible_to
from reviewer.models import ReviewItem
from reviewer.selectors.items import review_items_details
from reviewer.services.queue import (
    QUEUE_MODES,
    QUEUE_STATES,
    QueueFilters,
)


def extend_schema_field_list(serializer_class):
    return extend_schema_field(serializer_class(many=True))


def thumbnail_url(image_id: int) -> str:
    return reverse("image-thumbnail", args=[image_id])


class DuplicateOutput(serializers.Serializer):
    class Meta:
        ref_name = "ReviewDuplicate"

    image_id = serializers.IntegerField()
    relative_path = serializers.CharField()
    thumbnail_url = serializers.CharField()


class NearDuplicateOutput(DuplicateOutput):
    class Meta:
        ref_name = "ReviewNearDuplicate"

    distance = serializers.IntegerField()


class HistoryOutput(serializers.Serializer):
    class Meta:
        ref_name = "ReviewHistoryEntry"

    reviewer = serializers.CharField()
    verdict = serializers.CharField()
    category = serializers.CharField()
    created_at = serializers.DateTimeField()
    retracted = serializers.BooleanField()
    retracted_at = serializers.DateTimeField(allow_null=True)
    propagated_from = serializers.IntegerField(allow_null=True)
    # A reviewer's verdict on an already decided item; an admin's verdict that settled one.
    is_second_look = serializers.BooleanField()
    is_adjudication = serializers.BooleanField()


class ReviewItemOutput(serializers.Serializer):
    """An item as the review screen shows it; the context carries `details` from
    reviewer.selectors.items.review_items_details and the queue `mode`. (A plain Serializer: it is
    on the hot path of every next-item request.)"""

    class Meta:
        ref_name = "ReviewItem"

    id = serializers.IntegerField()
    dataset = serializers.IntegerField(source="dataset_id")
    dataset_name = serializers.CharField(source="dataset.name")
    image_id = serializers.IntegerField()
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    relative_path = serializers.CharField(source="image.relative_path")
    source_folder = serializers.SerializerMethodField()
    width = serializers.IntegerField(source="image.width", allow_null=True)
    height = serializers.IntegerField(source="image.height", allow_null=True)
    format = serializers.CharField(source="image.format")
    score = serializers.FloatField()
    state = serializers.ChoiceField(choices=ReviewItem.State.choices)
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    mode = serializers.SerializerMethodField()
    is_audit = serializers.BooleanField()
    required_verdicts = serializers.SerializerMethodField()
    verdict_count = serializers.SerializerMethodField()
    categories = serializers.SerializerMethodField()
    identical = serializers.SerializerMethodField()
    near_duplicates = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()

    def _details(self, item: ReviewItem) -> dict:
        return self.context["details"][item.pk]

    def get_image_url(self, item: ReviewItem) -> str:
        return reverse("image-file", args=[item.image_id])

    def get_thumbnail_url(self, item: ReviewItem) -> str:
        return thumbnail_url(item.image_id)

    def get_source_folder(self, item: ReviewItem) -> str:
        return posixpath.dirname(item.image.relative_path)

    def get_mode(self, item: ReviewItem) -> str:
        return self.context.get("mode", "score")

    def get_required_verdicts(self, item: ReviewItem) -> int:
        return self._details(item)["required_verdicts"]

    def get_verdict_count(self, item: ReviewItem) -> int:
        return self._details(item)["verdict_count"]

    def get_categories(self, item: ReviewItem) -> list[str]:
        return self._details(item)["categories"]

    @extend_schema_field_list(DuplicateOutput)
    def get_identical(self, item: ReviewItem) -> list[dict]:
        return [
            {
                "image_id": image.pk,
                "relative_path": image.relative_path,
                "thumbnail_url": thumbnail_url(image.pk),
            }
            for image in self._details(item)["identical"]
        ]

    @extend_schema_field_list(NearDuplicateOutput)
    def get_near_duplicates(self, item: ReviewItem) -> list[dict]:
        return [
            {
                "image_id": image.pk,
                "relative_path": image.relative_path,
                "thumbnail_url": thumbnail_url(image.pk),
                "distance": distance,
            }
            for image, distance in self._details(item)["near_duplicates"]
        ]

    @extend_schema_field_list(HistoryOutput)
    def get_history(self, item: ReviewItem) -> list[dict]:
        return list(HistoryOutput(self._details(item)["history"], many=True).data)


def items_response_data(items: list[ReviewItem], *, request: Request, mode: str) -> list[dict]:
    details = review_items_details(items=items, viewer=request_user(request))
    return list(ReviewItemOutput(items, many=True, context={"details": details, "mode": mode}).data)


class QueueQuery(serializers.Serializer):
    class Meta:
        ref_name = "ReviewQueueQuery"

    dataset = IdField(required=False)
    mode = serializers.ChoiceField(choices=QUEUE_MODES, default="score")
    score_min = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    score_max = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    state = serializers.ChoiceField(choices=QUEUE_STATES, required=False)
    folder = serializers.CharField(required=False, allow_blank=True, max_length=1024)
    category = serializers.CharField(required=False, allow_blank=True, max_length=100)
    class_label = serializers.CharField(required=False, allow_blank=True, max_length=200)

    def filters(self, user) -> QueueFilters:
        """The queue filters; a dataset the user may not review is answered as not found."""
        data = self.validated_data
        dataset = datasets_visible_to(user).get(pk=data["dataset"]) if data.get("dataset") else None
        return QueueFilters(
            dataset=dataset,
            score_min=data.get("score_min"),
            score_max=data.get("score_max"),
            state=data.get("state"),
            folder=data.get("folder", ""),
            category=data.get("category", ""),
            class_label=data.get("class_label", ""),
        )


class SkippedPropagationOutput(serializers.Serializer):
    """An image a verdict did not propagate to, and why."""

    class Meta:
        ref_name = "ReviewSkippedPropagation"

    image_id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    # e.g. "held by another reviewer until <time>", "needs 2 independent verdicts".
    reason = serializers.CharField()


class IntervalOutput(serializers.Serializer):
    class Meta:
        ref_name = "ReviewStatsPrecision"

    estimate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()
