"""Export API: create and list exports, their state, and the authorised download."""

from __future__ import annotations

from django.http import FileResponse, Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, Export
from curation.services.exports import export_create
from curation.storage import stored_open

from .ids import IdRelatedField, parse_id_param
from .permissions import request_user
from .serializers import ExportOutput
from .views import AdminAPIView


class ExportListApi(AdminAPIView):
    class FiltersInput(serializers.Serializer):
        class Meta:
            ref_name = "ExportFiltersInput"

        categories = serializers.ListField(
            child=serializers.CharField(max_length=100), required=False, max_length=100
        )
        classes = serializers.ListField(
            child=serializers.CharField(max_length=200), required=False, max_length=100
        )
        min_score = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
        max_score = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ExportListInput"

        dataset = IdRelatedField(queryset=Dataset.objects.all())
        format = serializers.ChoiceField(choices=Export.Format.choices)
        scope = serializers.ChoiceField(
            choices=Export.Scope.choices, default=Export.Scope.CONFIRMED
        )
        filters = serializers.DictField(required=False, default=dict)
        copy_kind = serializers.ChoiceField(
            choices=Export.CopyKind.choices, required=False, default="", allow_blank=True
        )
        copy_target = serializers.CharField(
            required=False, default="", allow_blank=True, max_length=2048
        )
        copy_mode = serializers.ChoiceField(
            choices=Export.CopyMode.choices, required=False, default=Export.CopyMode.COPY
        )

        def validate_filters(self, value: dict) -> dict:
            filters = ExportListApi.FiltersInput(data=value)
            filters.is_valid(raise_exception=True)
            unknown = set(value) - set(filters.fields)
            if unknown:
                raise serializers.ValidationError(f"Unknown filter {sorted(unknown)[0]!r}.")
            return dict(filters.validated_data)

    @extend_schema(
        parameters=[OpenApiParameter("dataset", int, required=False)],
        responses=ExportOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        exports = Export.objects.all()
        dataset_id = parse_id_param(request, "dataset")
        if dataset_id is not None:
            exports = exports.filter(dataset_id=dataset_id)
        return Response(ExportOutput(exports[:200], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ExportOutput})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        export = export_create(**data.validated_data, created_by=request_user(request))
        return Response(ExportOutput(export).data, status=status.HTTP_201_CREATED)


class ExportDetailApi(AdminAPIView):
    @extend_schema(responses=ExportOutput)
    def get(self, request: Request, export_id: int) -> Response:
        return Response(ExportOutput(Export.objects.get(pk=export_id)).data)


class ExportDownloadApi(AdminAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "part", str, enum=["file", "provenance"], required=False,
                description="file (default): the export; provenance: its sidecar .json.",
            )
        ],
        responses={(200, "application/octet-stream"): bytes},
    )  # fmt: skip
    def get(self, request: Request, export_id: int) -> FileResponse:
        export = Export.objects.get(pk=export_id)
        if export.state != Export.State.SUCCEEDED:
            raise StateConflict("The export is not ready.")
        part = request.query_params.get("part", "file")
        if part not in ("file", "provenance"):
            raise ValidationFailed("part must be 'file' or 'provenance'.")
        return export_file_response(export, provenance=part == "provenance")


EXPORT_CONTENT_TYPES: dict[str, str] = {
    Export.Format.CSV: "text/csv",
    Export.Format.HASH_BANK: "text/csv",
    Export.Format.JSON: "application/json",
    Export.Format.JSONL: "application/x-ndjson",
    Export.Format.PARQUET: "application/vnd.apache.parquet",
}


def export_file_response(export: Export, *, provenance: bool = False) -> FileResponse:
    if provenance:
        reference, content_type, extension = (
            export.provenance_path,
            "application/json",
            ("provenance.json"),
        )
    else:
        reference = export.file_path
        content_type = EXPORT_CONTENT_TYPES.get(export.format, "text/plain")
        extension = export.file_extension
    if not reference:
        raise Http404("The export has no such file.")
    try:
        # Streamed from its storage (local disk or the bucket a worker wrote it to).
        handle = stored_open(reference)
    except OSError as exc:
        raise Http404("The export file is no longer stored.") from exc
    kind = "keep-list" if export.scope == Export.Scope.KEEP else "blocklist"
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"q16-{kind}-{export.dataset_id}-{export.pk}.{extension}",
        content_type=content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
