"""Review API, numbers: what admins read about a dataset's review."""

from __future__ import annotations

from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.api.ids import parse_id_param
from curation.api.permissions import IsCurationAdmin
from curation.models import Dataset, PromptVersion
from reviewer.api.serializers import (
    IntervalOutput,
)
from reviewer.selectors.stats import dataset_review_stats


def _policy_data(policy: dict) -> dict:
    job = policy.get("last_job")
    if job is not None:
        job = {
            **job,
            "created_at": job["created_at"].isoformat() if job["created_at"] else None,
            "finished_at": job["finished_at"].isoformat() if job["finished_at"] else None,
        }
    return {**policy, "last_job": job}


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
        precision_low = serializers.FloatField(allow_null=True)
        precision_high = serializers.FloatField(allow_null=True)
        recall = serializers.FloatField(allow_null=True)
        recall_low = serializers.FloatField(allow_null=True)
        recall_high = serializers.FloatField(allow_null=True)
        # Reviewed images at or above the threshold (what the precision rests on).
        n_reviewed_above = serializers.IntegerField()
        queue_size = serializers.IntegerField()

    class PrecisionSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsFlaggedPrecision"

        estimate = serializers.FloatField(allow_null=True)
        low = serializers.FloatField(allow_null=True)
        high = serializers.FloatField(allow_null=True)
        n = serializers.IntegerField()
        flagged = serializers.IntegerField()
        # Flagged images in score bins with at least one verdict.
        flagged_covered = serializers.IntegerField()

    class RecallSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewStatsRecall"

        estimate = serializers.FloatField(allow_null=True)
        low = serializers.FloatField(allow_null=True)
        high = serializers.FloatField(allow_null=True)
        n_reviewed = serializers.IntegerField()
        n_audited = serializers.IntegerField()

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
        low = serializers.FloatField(allow_null=True)
        high = serializers.FloatField(allow_null=True)
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
        recall = serializers.DictField()
        missed = serializers.DictField()
        estimator = serializers.DictField()
        forecast = serializers.DictField()
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
                "precision": self.PrecisionSerializer(stats["precision"]).data,
                "recall": self.RecallSerializer(stats["recall"]).data,
                "missed": self.MissedSerializer(stats["missed"]).data,
                "histogram": self.HistogramSerializer(stats["histogram"]).data,
                "thresholds": self.ThresholdSerializer(stats["thresholds"], many=True).data,
                "throughput": self.ThroughputSerializer(stats["throughput"], many=True).data,
                "agreement": {
                    "overall": stats["agreement"]["overall"],
                    "pairs": self.PairSerializer(stats["agreement"]["pairs"], many=True).data,
                    "fleiss": stats["agreement"]["fleiss"],
                },
                "policy": _policy_data(stats["policy"]),
            }
        )
