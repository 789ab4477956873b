"""Review API, verdicts: record one, record many (grid), undo the last; an image's history."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.api.ids import IdField
from curation.api.permissions import IsCurationAdmin, request_user
from curation.models import Image
from reviewer.api.serializers import (
    HistoryOutput,
    ReviewItemOutput,
    SkippedPropagationOutput,
    items_response_data,
)
from reviewer.models import Decision
from reviewer.selectors.verdicts import image_history
from reviewer.services.decisions import (
    review_action_undo,
    review_decision_bulk,
    review_decision_record,
)
from reviewer.services.queue import (
    QUEUE_MODES,
)


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
            reviewer=request_user(request),
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
            reviewer=request_user(request),
            verdict=data.validated_data["verdict"],
            category=data.validated_data.get("category", ""),
        )
        return Response(self.OutputSerializer(result).data)


class RetractedDecisionOutput(serializers.ModelSerializer):
    class Meta:
        ref_name = "ReviewRetractedDecision"
        model = Decision
        fields = ["id", "item", "image", "verdict", "category", "is_second_look", "created_at"]


class ReviewUndoApi(APIView):
    """Retract the reviewer's latest action: their latest verdict, or every verdict of the bulk
    verdict it was part of. The items come back, leased to them, shown in the queue mode the
    screen is in (`mode` in the body or the query string; default "score")."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewUndoInput"

        mode = serializers.ChoiceField(choices=QUEUE_MODES, default="score")

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewUndoOutput"

        # The latest retracted decision and its item (one verdict: the only ones).
        item = ReviewItemOutput()
        retracted_decision_id = serializers.IntegerField()
        # Every item and decision of the action, in the order they were decided.
        items = ReviewItemOutput(many=True)
        retracted_decisions = RetractedDecisionOutput(many=True)

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
        undone = review_action_undo(reviewer=request_user(request))
        items = items_response_data(undone.items, request=request, mode=mode)
        return Response(
            {
                "item": items[-1],
                "retracted_decision_id": undone.decisions[-1].pk,
                "items": items,
                "retracted_decisions": RetractedDecisionOutput(undone.decisions, many=True).data,
            }
        )


class ImageHistoryApi(APIView):
    """Every verdict on an image, retracted ones included and marked (admins)."""

    permission_classes = [IsCurationAdmin]

    @extend_schema(responses={200: HistoryOutput(many=True)})
    def get(self, request: Request, image_id: int) -> Response:
        image = Image.objects.get(pk=image_id)
        return Response(HistoryOutput(image_history(image_id=image.pk), many=True).data)
