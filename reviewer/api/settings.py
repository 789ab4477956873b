"""Review API, settings: a reviewer's preferences and a dataset's review rules (admins)."""

from __future__ import annotations

from drf_spectacular.utils import (
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.api.ids import IdRelatedField
from curation.api.permissions import IsCurationAdmin, request_user
from curation.models import Dataset, PromptVersion
from reviewer.models import MAX_AUDIT_SHARE, ReviewerPreferences, ReviewSettings
from reviewer.selectors.settings import review_settings_get, reviewer_preferences_get
from reviewer.services.settings import review_settings_update, reviewer_preferences_update


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
        prefs = reviewer_preferences_get(user=request_user(request))
        return Response(self.PreferencesSerializer(prefs).data)

    @extend_schema(request=PreferencesSerializer, responses={200: PreferencesSerializer})
    def put(self, request: Request) -> Response:
        data = self.PreferencesSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        prefs = reviewer_preferences_update(user=request_user(request), **data.validated_data)
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
        # {old name: new name}: the dataset's past verdicts follow the rename.
        category_renames = serializers.DictField(
            child=serializers.CharField(max_length=100), required=False
        )
        audit_share = serializers.FloatField(
            required=False, min_value=0.0, max_value=MAX_AUDIT_SHARE
        )
        learn_uncertain_share = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        uncertain_diverse = serializers.BooleanField(required=False)
        auto_retrain_every = serializers.IntegerField(
            required=False, allow_null=True, min_value=1, max_value=2**31 - 1
        )
        pinned_version = IdRelatedField(
            queryset=PromptVersion.objects.all(), required=False, allow_null=True
        )

    class OutputSerializer(serializers.ModelSerializer):
        # The prompt policy's fields live in curation.PromptPolicy; ReviewSettings reads them through.
        auto_retrain_every = serializers.IntegerField(read_only=True, allow_null=True)
        verdicts_since_retrain = serializers.IntegerField(read_only=True)
        pinned_version = serializers.IntegerField(
            source="pinned_version_id", read_only=True, allow_null=True
        )
        last_retrain_job = serializers.IntegerField(
            source="last_retrain_job_id", read_only=True, allow_null=True
        )

        class Meta:
            ref_name = "ReviewSettingsOutput"
            model = ReviewSettings
            fields = [
                "dataset", "required_verdicts", "near_duplicate_distance", "categories",
                "audit_share", "learn_uncertain_share", "uncertain_diverse",
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
            dataset=dataset, updated_by=request_user(request), **data.validated_data
        )
        return Response(self.OutputSerializer(rules).data)
