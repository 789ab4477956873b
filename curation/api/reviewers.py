"""Which reviewers may review a dataset (admins): GET lists them, PUT replaces the list."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.models import Dataset
from curation.selectors import dataset_reviewers
from curation.services.assignments import dataset_reviewers_set

from .ids import IdField
from .permissions import IsCurationAdmin, request_user


class ReviewerOutput(serializers.Serializer):
    class Meta:
        ref_name = "DatasetReviewer"

    id = serializers.IntegerField(source="pk")
    username = serializers.CharField()


class DatasetReviewersApi(APIView):
    permission_classes = [IsCurationAdmin]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DatasetReviewersInput"

        user_ids = serializers.ListField(child=IdField(), allow_empty=True, max_length=1000)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DatasetReviewers"

        dataset = serializers.IntegerField()
        reviewers = ReviewerOutput(many=True)

    def _data(self, dataset: Dataset, users) -> dict:
        return self.OutputSerializer({"dataset": dataset.pk, "reviewers": list(users)}).data

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = Dataset.objects.get(pk=dataset_id)
        return Response(self._data(dataset, dataset_reviewers(dataset=dataset)))

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def put(self, request: Request, dataset_id: int) -> Response:
        dataset = Dataset.objects.get(pk=dataset_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        users = dataset_reviewers_set(
            dataset=dataset,
            user_ids=data.validated_data["user_ids"],
            assigned_by=request_user(request),
        )
        return Response(self._data(dataset, users))
