"""Review API: lease items (one or a batch), record, bulk-record and undo verdicts, release a
lease (or many at once), queue counts; reviewer preferences; per-dataset review settings and
numbers (admins)."""

from __future__ import annotations

import posixpath

from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.api.ids import IdField, IdRelatedField, parse_id_param
from curation.api.permissions import IsCurationAdmin
from curation.models import Dataset, Image, PromptVersion
from curation.selectors import datasets_visible_to, visible_dataset_ids
from reviewer.models import Decision, ReviewerPreferences, ReviewItem, ReviewSettings
from reviewer.selectors import (
    dataset_review_stats,
    image_history,
    review_items_details,
    review_queue_counts,
    review_settings_get,
    reviewer_preferences_get,
)
from reviewer.services import (
    MAX_BATCH,
    MAX_BULK,
    QUEUE_MODES,
    QUEUE_STATES,
    QueueFilters,
    review_decision_bulk,
    review_decision_record,
    review_decision_undo,
    review_item_batch,
    review_lease_release,
    review_leases_release,
    review_queue_size,
    review_settings_update,
    reviewer_preferences_update,
)


def extend_schema_field_list(serializer_class):
    return extend_schema_field(serializer_class(many=True))


def _thumbnail_url(image_id: int) -> str:
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


class ReviewItemOutput(serializers.Serializer):
    """An item as the review screen shows it; the context carries `details` from
    reviewer.selectors.review_items_details and the queue `mode`. (A plain Serializer: it is
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
        return _thumbnail_url(item.image_id)

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
                "thumbnail_url": _thumbnail_url(image.pk),
            }
            for image in self._details(item)["identical"]
        ]

    @extend_schema_field_list(NearDuplicateOutput)
    def get_near_duplicates(self, item: ReviewItem) -> list[dict]:
        return [
            {
                "image_id": image.pk,
                "relative_path": image.relative_path,
                "thumbnail_url": _thumbnail_url(image.pk),
                "distance": distance,
            }
            for image, distance in self._details(item)["near_duplicates"]
        ]

    @extend_schema_field_list(HistoryOutput)
    def get_history(self, item: ReviewItem) -> list[dict]:
        return HistoryOutput(self._details(item)["history"], many=True).data


def _items_response_data(items: list[ReviewItem], *, request: Request, mode: str) -> list[dict]:
    details = review_items_details(items=items, viewer=request.user)
    return ReviewItemOutput(items, many=True, context={"details": details, "mode": mode}).data


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
        )


class ReviewNextApi(APIView):
    """Lease the next item of a queue (the reviewer's held item first); 204 when empty."""

    @extend_schema(parameters=[QueueQuery], responses={200: ReviewItemOutput, 204: None})
    def get(self, request: Request) -> Response:
        query = QueueQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        mode = query.validated_data["mode"]
        items = review_item_batch(
            reviewer=request.user, limit=1, mode=mode, filters=query.filters(request.user)
        )
        if not items:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_items_response_data(items, request=request, mode=mode)[0])


class ReviewBatchApi(APIView):
    """Lease up to `limit` items at once (grid view)."""

    class InputSerializer(QueueQuery):
        class Meta:
            ref_name = "ReviewBatchQuery"

        limit = serializers.IntegerField(
            required=False, default=24, min_value=1, max_value=MAX_BATCH
        )

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewBatch"

        items = ReviewItemOutput(many=True)

    @extend_schema(parameters=[InputSerializer], responses={200: OutputSerializer})
    def get(self, request: Request) -> Response:
        query = self.InputSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        mode = query.validated_data["mode"]
        items = review_item_batch(
            reviewer=request.user,
            limit=query.validated_data["limit"],
            mode=mode,
            filters=query.filters(request.user),
        )
        return Response({"items": _items_response_data(items, request=request, mode=mode)})


class SkippedPropagationOutput(serializers.Serializer):
    """An image a verdict did not propagate to, and why."""

    class Meta:
        ref_name = "ReviewSkippedPropagation"

    image_id = serializers.IntegerField()
    item_id = serializers.IntegerField()
    # e.g. "held by another reviewer until <time>", "needs 2 independent verdicts".
    reason = serializers.CharField()


class ReviewDecisionApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewDecisionInput"

        verdict = serializers.ChoiceField(choices=Decision.Verdict.choices)
        category = serializers.CharField(required=False, allow_blank=True, max_length=100)
        apply_to = serializers.ListField(child=IdField(), required=False, max_length=200)

    class OutputSerializer(serializers.ModelSerializer):
        # The identical images and chosen near-duplicates that received the verdict, and
        # those left alone (another reviewer holds them, or k > 1 verdicts are needed).
        propagated_image_ids = serializers.ListField(child=serializers.IntegerField())
        skipped_propagation = SkippedPropagationOutput(many=True)

        class Meta:
            ref_name = "ReviewDecisionOutput"
            model = Decision
            fields = [
                "id", "item", "image", "reviewer", "verdict", "category", "created_at",
                "propagated_image_ids", "skipped_propagation",
            ]  # fmt: skip

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, item_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = review_decision_record(
            item_id=item_id,
            reviewer=request.user,
            verdict=data.validated_data["verdict"],
            category=data.validated_data.get("category", ""),
            apply_to=data.validated_data.get("apply_to", []),
        )
        return Response(self.OutputSerializer(decision).data, status=status.HTTP_201_CREATED)


class ReviewBulkDecisionApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewBulkDecisionInput"

        item_ids = serializers.ListField(child=IdField(), min_length=1, max_length=200)
        verdict = serializers.ChoiceField(choices=Decision.Verdict.choices)
        category = serializers.CharField(required=False, allow_blank=True, max_length=100)

    class ConflictSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewBulkConflict"

        id = serializers.IntegerField()
        detail = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewBulkDecisionOutput"

        decided = serializers.ListField(child=serializers.IntegerField())
        conflicts = serializers.ListField(child=serializers.DictField())

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = review_decision_bulk(
            item_ids=data.validated_data["item_ids"],
            reviewer=request.user,
            verdict=data.validated_data["verdict"],
            category=data.validated_data.get("category", ""),
        )
        return Response(self.OutputSerializer(result).data)


class ReviewUndoApi(APIView):
    """Retract the reviewer's latest verdict; the item comes back, leased to them, shown in the
    queue mode the screen is in (`mode` in the body or the query string; default "score")."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewUndoInput"

        mode = serializers.ChoiceField(choices=QUEUE_MODES, default="score")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewUndoOutput"

        item = ReviewItemOutput()
        retracted_decision_id = serializers.IntegerField()

    @extend_schema(
        request=InputSerializer,
        parameters=[OpenApiParameter("mode", str, required=False, enum=QUEUE_MODES)],
        responses={200: OutputSerializer},
    )
    def post(self, request: Request) -> Response:
        body = request.data
        source = body if isinstance(body, dict) and "mode" in body else request.query_params
        data = self.InputSerializer(data=source)
        data.is_valid(raise_exception=True)
        mode = data.validated_data["mode"]
        item, decision = review_decision_undo(reviewer=request.user)
        return Response(
            {
                "item": _items_response_data([item], request=request, mode=mode)[0],
                "retracted_decision_id": decision.pk,
            }
        )


class ReviewReleaseApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, item_id: int) -> Response:
        review_lease_release(item_id=item_id, reviewer=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReviewLeasesReleaseApi(APIView):
    """Give back the reviewer's leases at once: on these items, or (no or empty `item_ids`)
    every lease they hold. Other reviewers' leases and items outside the reviewer's datasets
    are left alone without an error; `released` counts the leases given back."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewLeasesReleaseInput"

        item_ids = serializers.ListField(child=IdField(), required=False, max_length=MAX_BULK)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewLeasesReleaseOutput"

        released = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        released = review_leases_release(
            reviewer=request.user, item_ids=data.validated_data.get("item_ids") or None
        )
        return Response(self.OutputSerializer({"released": released}).data)


class ReviewStatsApi(APIView):
    """Review counts: items per state (of the dataset, or of every dataset the user reviews),
    the user's own verdicts, and the size of the queue the query selects (the same parameters
    as next/: `queue` items served, `queue_remaining` of them still without the user's verdict).
    """

    @extend_schema(
        parameters=[QueueQuery],
        responses=inline_serializer(
            "ReviewStats",
            {
                "pending": serializers.IntegerField(),
                "decided": serializers.IntegerField(),
                "disputed": serializers.IntegerField(),
                "withdrawn": serializers.IntegerField(),
                "decided_by_me": serializers.IntegerField(),
                "queue": serializers.IntegerField(),
                "queue_remaining": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = QueueQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.filters(request.user)
        counts = review_queue_counts(
            dataset_id=filters.dataset.pk if filters.dataset is not None else None,
            dataset_ids=visible_dataset_ids(request.user),
        )
        counts.update(
            review_queue_size(
                reviewer=request.user, mode=query.validated_data["mode"], filters=filters
            )
        )
        counts["decided_by_me"] = (
            Decision.objects.filter(reviewer=request.user, retraction__isnull=True)
            .exclude(verdict=Decision.Verdict.SKIP)
            .count()
        )
        return Response(counts)


class ReviewPreferencesApi(APIView):
    class PreferencesSerializer(serializers.ModelSerializer):
        # Not trimmed: " " is the Space key.
        keymap = serializers.DictField(
            child=serializers.CharField(max_length=20, trim_whitespace=False), required=False
        )

        class Meta:
            ref_name = "ReviewerPreferences"
            model = ReviewerPreferences
            fields = ["blur_strength", "greyscale", "break_every", "keymap", "default_view"]
            extra_kwargs = {
                "blur_strength": {"required": False},
                "greyscale": {"required": False},
                "break_every": {"required": False},
                "default_view": {"required": False},
            }

    @extend_schema(responses={200: PreferencesSerializer})
    def get(self, request: Request) -> Response:
        prefs = reviewer_preferences_get(user=request.user)
        return Response(self.PreferencesSerializer(prefs).data)

    @extend_schema(request=PreferencesSerializer, responses={200: PreferencesSerializer})
    def put(self, request: Request) -> Response:
        data = self.PreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prefs = reviewer_preferences_update(user=request.user, **data.validated_data)
        return Response(self.PreferencesSerializer(prefs).data)


class DatasetReviewSettingsApi(APIView):
    permission_classes = [IsCurationAdmin]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewSettingsInput"

        required_verdicts = serializers.IntegerField(required=False, min_value=1, max_value=10)
        near_duplicate_distance = serializers.IntegerField(
            required=False, min_value=0, max_value=32
        )
        categories = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, min_length=1
        )
        auto_retrain_every = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**31 - 1
        )
        pinned_version = IdRelatedField(
            queryset=PromptVersion.objects.all(), required=False, allow_null=True
        )

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            ref_name = "ReviewSettingsOutput"
            model = ReviewSettings
            fields = [
                "dataset", "required_verdicts", "near_duplicate_distance", "categories",
                "auto_retrain_every", "verdicts_since_retrain", "pinned_version",
                "last_retrain_job", "updated_at",
            ]  # fmt: skip

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = Dataset.objects.get(pk=dataset_id)
        return Response(self.OutputSerializer(review_settings_get(dataset_id=dataset.pk)).data)

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def put(self, request: Request, dataset_id: int) -> Response:
        dataset = Dataset.objects.get(pk=dataset_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        rules = review_settings_update(
            dataset=dataset, updated_by=request.user, **data.validated_data
        )
        return Response(self.OutputSerializer(rules).data)


class IntervalOutput(serializers.Serializer):
    class Meta:
        ref_name = "ReviewStatsPrecision"

    estimate = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField()


class DatasetReviewStatsApi(APIView):
    """What admins read about a dataset's review (optionally for one prompt version's run)."""

    permission_classes = [IsCurationAdmin]

    class MissedSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsMissed"

        rate = serializers.FloatField(allow_null=True)
        low = serializers.FloatField(allow_null=True)
        high = serializers.FloatField(allow_null=True)
        n_audited = serializers.IntegerField()
        unflagged = serializers.IntegerField()
        estimated_missed = serializers.IntegerField(allow_null=True)
        estimated_missed_low = serializers.IntegerField(allow_null=True)
        estimated_missed_high = serializers.IntegerField(allow_null=True)

    class HistogramSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsHistogram"

        bins = serializers.ListField(child=serializers.FloatField())
        confirmed = serializers.ListField(child=serializers.IntegerField())
        rejected = serializers.ListField(child=serializers.IntegerField())
        unreviewed = serializers.ListField(child=serializers.IntegerField())

    class ThresholdSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsThreshold"

        threshold = serializers.FloatField()
        precision = serializers.FloatField(allow_null=True)
        recall = serializers.FloatField(allow_null=True)
        queue_size = serializers.IntegerField()

    class ThroughputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsThroughput"

        reviewer = serializers.CharField()
        day = serializers.DateField()
        verdicts = serializers.IntegerField()

    class PairSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsKappaPair"

        a = serializers.CharField()
        b = serializers.CharField()
        kappa = serializers.FloatField(allow_null=True)
        n = serializers.IntegerField()

    class AgreementSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsAgreement"

        overall = serializers.FloatField(allow_null=True)
        pairs = serializers.ListField(child=serializers.DictField())

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DatasetReviewStats"

        run = serializers.IntegerField(allow_null=True)
        prompt_version = serializers.IntegerField(allow_null=True)
        threshold = serializers.FloatField(allow_null=True)
        counts = serializers.DictField(child=serializers.IntegerField())
        precision = IntervalOutput()
        missed = serializers.DictField()
        histogram = serializers.DictField()
        thresholds = serializers.ListField(child=serializers.DictField())
        throughput = serializers.ListField(child=serializers.DictField())
        agreement = serializers.DictField()
        policy = serializers.DictField()

    @extend_schema(
        parameters=[OpenApiParameter("version", int, required=False)],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = Dataset.objects.get(pk=dataset_id)
        version_id = parse_id_param(request, "version")
        version = PromptVersion.objects.get(pk=version_id) if version_id is not None else None
        stats = dataset_review_stats(dataset=dataset, version=version)
        return Response(
            {
                **stats,
                "precision": IntervalOutput(stats["precision"]).data,
                "missed": self.MissedSerializer(stats["missed"]).data,
                "histogram": self.HistogramSerializer(stats["histogram"]).data,
                "thresholds": self.ThresholdSerializer(stats["thresholds"], many=True).data,
                "throughput": self.ThroughputSerializer(stats["throughput"], many=True).data,
                "agreement": {
                    "overall": stats["agreement"]["overall"],
                    "pairs": self.PairSerializer(stats["agreement"]["pairs"], many=True).data,
                },
                "policy": _policy_data(stats["policy"]),
            }
        )


def _policy_data(policy: dict) -> dict:
    job = policy.get("last_job")
    if job is not None:
        job = {
            **job,
            "created_at": job["created_at"].isoformat() if job["created_at"] else None,
            "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None,
        }
    return {**policy, "last_job": job}


class ImageHistoryApi(APIView):
    """Every verdict on an image, retracted ones included and marked (admins)."""

    permission_classes = [IsCurationAdmin]

    @extend_schema(responses={200: HistoryOutput(many=True)})
    def get(self, request: Request, image_id: int) -> Response:
        image = Image.objects.get(pk=image_id)
        return Response(HistoryOutput(image_history(image_id=image.pk), many=True).data)
