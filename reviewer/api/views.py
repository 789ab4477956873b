"""Review API: lease the next item, record a verdict, release a lease."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.models import Dataset
from reviewer.models import Decision, ReviewItem
from reviewer.selectors import review_queue_counts
from reviewer.services import review_decision_record, review_item_next, review_lease_release


class ReviewItemOutput(serializers.ModelSerializer):
    image_id = serializers.IntegerField(source="image.id")
    image_url = serializers.SerializerMethodField()
    relative_path = serializers.CharField(source="image.relative_path")
    width = serializers.IntegerField(source="image.width")
    height = serializers.IntegerField(source="image.height")
    format = serializers.CharField(source="image.format")
    dataset_name = serializers.CharField(source="dataset.name")

    class Meta:
        model = ReviewItem
        fields = [
            "id", "dataset", "dataset_name", "image_id", "image_url", "relative_path", "width",
            "height", "format", "score", "state", "lease_expires_at",
        ]  # fmt: skip

    def get_image_url(self, item: ReviewItem) -> str:
        return reverse("image-file", args=[item.image_id])


class ReviewNextApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("dataset", int, required=False)],
        responses={200: ReviewItemOutput, 204: None},
    )
    def get(self, request: Request) -> Response:
        dataset = None
        dataset_param = request.query_params.get("dataset", "")
        if dataset_param.isdigit():
            dataset = Dataset.objects.get(pk=int(dataset_param))
        item = review_item_next(reviewer=request.user, dataset=dataset)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewItemOutput(item).data)


class ReviewDecisionApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewDecisionInput"

        verdict = serializers.ChoiceField(choices=Decision.Verdict.choices)

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            ref_name = "ReviewDecisionOutput"
            model = Decision
            fields = ["id", "item", "image", "reviewer", "verdict", "created_at"]

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer})
    def post(self, request: Request, item_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = review_decision_record(
            item_id=item_id, reviewer=request.user, verdict=data.validated_data["verdict"]
        )
        return Response(self.OutputSerializer(decision).data, status=status.HTTP_201_CREATED)


class ReviewReleaseApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request: Request, item_id: int) -> Response:
        review_lease_release(item_id=item_id, reviewer=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReviewStatsApi(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("dataset", int, required=False)],
        responses=inline_serializer(
            "ReviewStats",
            {
                "pending": serializers.IntegerField(),
                "decided": serializers.IntegerField(),
                "withdrawn": serializers.IntegerField(),
                "decided_by_me": serializers.IntegerField(),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        dataset_param = request.query_params.get("dataset", "")
        counts = review_queue_counts(
            dataset_id=int(dataset_param) if dataset_param.isdigit() else None
        )
        counts["decided_by_me"] = (
            Decision.objects.filter(reviewer=request.user)
            .exclude(verdict=Decision.Verdict.SKIP)
            .count()
        )
        return Response(counts)
