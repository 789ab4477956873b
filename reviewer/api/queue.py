"""Review API, the queue: lease the next item or a batch, renew and release leases, queue
counts."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import (
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.api.ids import IdField
from curation.api.permissions import request_user
from curation.selectors import visible_dataset_ids
from reviewer.api.serializers import (
    QueueQuery,
    ReviewItemOutput,
    items_response_data,
)
from reviewer.models import Decision
from reviewer.selectors.verdicts import review_queue_counts
from reviewer.services.decisions import (
    MAX_BULK,
)
from reviewer.services.leases import review_leases_renew
from reviewer.services.queue import (
    MAX_BATCH,
    review_item_batch,
    review_lease_release,
    review_leases_release,
    review_queue_held_by_others,
    review_queue_size,
)


class ReviewNextApi(APIView):
    """Lease the next item of a queue (the reviewer's held item first); 204 when empty."""

    @extend_schema(parameters=[QueueQuery], responses={200: ReviewItemOutput, 204: None})
    def get(self, request: Request) -> Response:
        query = QueueQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        mode = query.validated_data["mode"]
        items = review_item_batch(
            reviewer=request_user(request),
            limit=1,
            mode=mode,
            filters=query.filters(request_user(request)),
        )
        if not items:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(items_response_data(items, request=request, mode=mode)[0])


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
            reviewer=request_user(request),
            limit=query.validated_data["limit"],
            mode=mode,
            filters=query.filters(request_user(request)),
        )
        return Response({"items": items_response_data(items, request=request, mode=mode)})


class ReviewReleaseApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, item_id: int) -> Response:
        review_lease_release(item_id=item_id, reviewer=request_user(request))
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
            reviewer=request_user(request), item_ids=data.validated_data.get("item_ids") or None
        )
        return Response(self.OutputSerializer({"released": released}).data)


class LeaseRefusedOutput(serializers.Serializer):
    """A lease the heartbeat did not renew, and why."""

    class Meta:
        ref_name = "ReviewLeaseRefused"

    id = serializers.IntegerField()
    reason = serializers.CharField()


class ReviewLeasesRenewApi(APIView):
    """The review page's heartbeat: extend the reviewer's leases on `item_ids` (or, with
    `all`, every lease they hold) to Q16_LEASE_SECONDS from now. Leases that are not theirs
    are never touched: each such id comes back in `refused` with the reason ("held by another
    reviewer", or "not leased to you": released, decided, taken over, or unknown)."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewLeasesRenewInput"

        item_ids = serializers.ListField(
            child=IdField(), required=False, allow_empty=False, max_length=MAX_BULK
        )
        all = serializers.BooleanField(required=False, default=False)

        def validate(self, attrs):
            if ("item_ids" in attrs) == attrs["all"]:
                raise serializers.ValidationError(
                    "Send item_ids (the items to renew) or all: true (every lease of yours)."
                )
            return attrs

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewLeasesRenewOutput"

        renewed = serializers.ListField(child=serializers.IntegerField())
        refused = LeaseRefusedOutput(many=True)
        lease_expires_at = serializers.DateTimeField()
        lease_seconds = serializers.IntegerField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        renewal = review_leases_renew(
            reviewer=request_user(request), item_ids=data.validated_data.get("item_ids")
        )
        return Response(
            self.OutputSerializer(
                {
                    "renewed": renewal.renewed,
                    "refused": [{"id": i, "reason": reason} for i, reason in renewal.refused],
                    "lease_expires_at": renewal.expires_at,
                    "lease_seconds": settings.Q16_LEASE_SECONDS,
                }
            ).data
        )


class ReviewStatsApi(APIView):
    """Review counts: items per state (of the dataset, or of every dataset the user reviews),
    the user's own verdicts, and the size of the queue the query selects (the same parameters
    as next/: `queue` items served, `queue_remaining` of them still without the user's verdict;
    while other reviewers hold some of those on live leases, `held_by_others` how many and
    `held_by_others_until` when the first of their leases ends: why a queue can be empty for
    this reviewer with items left).
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
                # Only while other reviewers hold items of queue_remaining on live leases (the
                # answer is otherwise as before): how many, and when the first lease ends.
                "held_by_others": serializers.IntegerField(required=False),
                "held_by_others_until": serializers.DateTimeField(required=False),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        query = QueueQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        filters = query.filters(request_user(request))
        counts = review_queue_counts(
            dataset_id=filters.dataset.pk if filters.dataset is not None else None,
            dataset_ids=visible_dataset_ids(request_user(request)),
        )
        counts.update(
            review_queue_size(
                reviewer=request_user(request), mode=query.validated_data["mode"], filters=filters
            )
        )
        held = review_queue_held_by_others(
            reviewer=request_user(request), mode=query.validated_data["mode"], filters=filters
        )
        counts["decided_by_me"] = (
            Decision.objects.filter(reviewer=request_user(request), retraction__isnull=True)
            .exclude(verdict=Decision.Verdict.SKIP)
            .count()
        )
        if not held.count:
            return Response(counts)
        return Response(
            {
                **counts,
                "held_by_others": held.count,
                "held_by_others_until": held.first_lease_ends_at,
            }
        )
