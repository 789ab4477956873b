"""Review API, class labels: a dataset's review numbers grouped by class."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.api.ids import parse_id_param
from curation.api.permissions import IsCurationAdmin
from curation.models import Dataset, PromptVersion
from reviewer.selectors.classes import dataset_class_stats


class DatasetClassStatsApi(APIView):
    """Per class label: images, scored, flagged, reviewed, confirmed and the confirmed share
    (Wilson 95 % interval); `classes` is empty when the dataset has no class labels."""

    permission_classes = [IsCurationAdmin]

    class ClassSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewClassStats"

        class_label = serializers.CharField()
        images = serializers.IntegerField()
        scored = serializers.IntegerField()
        flagged = serializers.IntegerField()
        reviewed = serializers.IntegerField()
        confirmed = serializers.IntegerField()
        share_confirmed = serializers.FloatField(allow_null=True)
        share_low = serializers.FloatField(allow_null=True)
        share_high = serializers.FloatField(allow_null=True)

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DatasetClassStats"

        run = serializers.IntegerField(allow_null=True)
        classes = serializers.ListField(child=serializers.DictField())

    @extend_schema(
        parameters=[OpenApiParameter("version", int, required=False)],
        responses={200: OutputSerializer},
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = Dataset.objects.get(pk=dataset_id)
        version_id = parse_id_param(request, "version")
        version = PromptVersion.objects.get(pk=version_id) if version_id is not None else None
        stats = dataset_class_stats(dataset=dataset, version=version)
        return Response(
            {"run": stats["run"], "classes": self.ClassSerializer(stats["classes"], many=True).data}
        )
