"""REST API of the curation domain: thin views over services and selectors."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.errors import StateConflict, ValidationFailed
from curation.models import Dataset, Image, PromptJob, PromptVersion, ScoringRun
from curation.selectors import (
    active_prompt_version,
    dataset_import_progress,
    dataset_summary,
    prompt_version_list,
)
from curation.services.clip_config import configured_model_key
from curation.services.datasets import (
    dataset_create_from_archive,
    dataset_create_from_folder,
    dataset_create_from_url_list,
    dataset_import_cancel,
    dataset_import_resume,
)
from curation.services.prompt_jobs import (
    PAPER_APPROPRIATE,
    PAPER_INAPPROPRIATE,
    prompt_job_cancel,
    prompt_job_create_training,
    prompt_job_create_zero_shot,
    prompt_job_resume,
)
from curation.services.prompt_versions import prompt_version_activate, prompt_version_import
from curation.services.scoring import scoring_run_cancel, scoring_run_resume, scoring_run_start
from curation.services.sources.create import dataset_create_from_source, dataset_reimport
from curation.validators import validate_threshold
from worker.engine.tuning_config import (
    DEFAULT_HELDOUT_FRACTION,
    HELDOUT_FRACTION_BOUNDS,
    tuning_config_from,
)

from .ids import BoundedLimitOffsetPagination, IdRelatedField, parse_id_param
from .permissions import IsCurationAdmin, request_user
from .serializers import (
    DatasetOutput,
    ImageOutput,
    PromptJobOutput,
    PromptVersionOutput,
    RunDetailOutput,
    RunOutput,
    tuning_serializer_field,
)


class AdminAPIView(APIView):
    permission_classes = [IsCurationAdmin]


# The answer of an action the object's state does not allow (a domain StateConflict).
ConflictOutput = inline_serializer("ConflictOutput", {"detail": serializers.CharField()})


def _state_action_schema(output) -> dict:
    """Schema of a cancel / resume action: no body, the object back, or 409 with a reason."""
    return {"request": None, "responses": {200: output, 409: ConflictOutput}}


# --- Datasets -----------------------------------------------------------------------------


class DatasetListApi(AdminAPIView):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "DatasetListInput"

        name = serializers.CharField(max_length=200)
        folder = serializers.CharField(required=False, allow_blank=True, max_length=1024)
        archive = serializers.FileField(required=False)
        # A URL list: http(s) URLs, one per line (text), or the same as an uploaded text file.
        urls = serializers.CharField(required=False, allow_blank=True, max_length=50 * 2**20)
        url_list = serializers.FileField(required=False)
        # The sources of curation.services.sources: WebDataset shards (paths, fsspec URLs,
        # brace patterns; one per line), a URL table file, an img2dataset output folder.
        shards = serializers.CharField(required=False, allow_blank=True, max_length=1 << 20)
        url_table = serializers.FileField(required=False)
        url_column = serializers.CharField(required=False, default="url", max_length=200)
        table_format = serializers.ChoiceField(
            choices=["", "csv", "tsv", "jsonl", "parquet"], required=False, default=""
        )
        img2dataset_folder = serializers.CharField(
            required=False, allow_blank=True, max_length=1024
        )
        # Folder imports: each first-level folder's name is its images' class label.
        class_folders = serializers.BooleanField(required=False, default=False)

        def validate(self, attrs):
            sources = ("folder", "archive", "urls", "url_list", "shards", "url_table")
            given = [key for key in (*sources, "img2dataset_folder") if attrs.get(key)]
            if len(given) != 1:
                raise serializers.ValidationError(
                    "Give exactly one of 'folder', 'archive', 'urls' or 'url_list', 'shards', "
                    "'url_table' or 'img2dataset_folder'."
                )
            if attrs.get("url_list"):
                raw = attrs.pop("url_list").read(50 * 2**20 + 1)
                if len(raw) > 50 * 2**20:
                    raise serializers.ValidationError({"url_list": "The URL list is too large."})
                try:
                    attrs["urls"] = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise serializers.ValidationError(
                        {"url_list": "The URL list must be UTF-8 text."}
                    ) from exc
            return attrs

    @extend_schema(responses=DatasetOutput(many=True))
    def get(self, request: Request) -> Response:
        datasets = Dataset.objects.all().order_by("-created_at")
        return Response(DatasetOutput(datasets, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: DatasetOutput})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        source = data.validated_data
        if source.get("shards") or source.get("url_table") or source.get("img2dataset_folder"):
            dataset = dataset_create_from_source(
                name=source["name"],
                shards=source.get("shards", ""),
                url_table=source.get("url_table"),
                url_column=source["url_column"],
                table_format=source["table_format"],
                img2dataset_folder=source.get("img2dataset_folder", ""),
                created_by=request_user(request),
            )
        elif data.validated_data.get("urls"):
            dataset = dataset_create_from_url_list(
                name=data.validated_data["name"],
                urls=data.validated_data["urls"],
                created_by=request_user(request),
            )
        elif data.validated_data.get("folder"):
            dataset = dataset_create_from_folder(
                name=data.validated_data["name"],
                folder=data.validated_data["folder"],
                created_by=request_user(request),
                class_folders=data.validated_data["class_folders"],
            )
        else:
            dataset = dataset_create_from_archive(
                name=data.validated_data["name"],
                archive=data.validated_data["archive"],
                created_by=request_user(request),
            )
        return Response(DatasetOutput(dataset).data, status=status.HTTP_201_CREATED)


class DatasetDetailApi(AdminAPIView):
    class OutputSerializer(DatasetOutput):
        summary = serializers.SerializerMethodField()
        import_chunks = serializers.SerializerMethodField()

        class Meta(DatasetOutput.Meta):
            ref_name = "DatasetDetail"
            fields = [*DatasetOutput.Meta.fields, "summary", "import_chunks"]

        def get_summary(self, dataset: Dataset) -> dict[str, int]:
            return dataset_summary(dataset=dataset)

        def get_import_chunks(self, dataset: Dataset) -> dict[str, Any]:
            """The import's chunks done / in progress / failed and each worker's share."""
            return dataset_import_progress(dataset=dataset)

    @extend_schema(responses=OutputSerializer)
    def get(self, request: Request, dataset_id: int) -> Response:
        dataset = Dataset.objects.get(pk=dataset_id)
        return Response(self.OutputSerializer(dataset).data)


class DatasetCancelImportApi(AdminAPIView):
    """Cancel a pending or running import; cancelling a cancelled one again is a no-op."""

    @extend_schema(**_state_action_schema(DatasetOutput))
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_import_cancel(
            dataset=Dataset.objects.get(pk=dataset_id), actor=request_user(request)
        )
        return Response(DatasetOutput(dataset).data)


class DatasetResumeImportApi(AdminAPIView):
    """Queue a cancelled or failed import again; it skips the files already recorded."""

    @extend_schema(**_state_action_schema(DatasetOutput))
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_import_resume(
            dataset=Dataset.objects.get(pk=dataset_id), actor=request_user(request)
        )
        return Response(DatasetOutput(dataset).data)


class DatasetReimportApi(AdminAPIView):
    """Import a finished dataset's source again: only what is new (by path or key) is added."""

    @extend_schema(**_state_action_schema(DatasetOutput))
    def post(self, request: Request, dataset_id: int) -> Response:
        dataset = dataset_reimport(
            dataset=Dataset.objects.get(pk=dataset_id), actor=request_user(request)
        )
        return Response(DatasetOutput(dataset).data)


class DatasetImagesApi(AdminAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, required=False, enum=Image.Status.values),
            OpenApiParameter("limit", int, required=False),
            OpenApiParameter("offset", int, required=False),
        ],
        responses=ImageOutput(many=True),
    )
    def get(self, request: Request, dataset_id: int) -> Response:
        images = Image.objects.filter(dataset_id=dataset_id).order_by("id")
        if request.query_params.get("status") in Image.Status.values:
            images = images.filter(status=request.query_params["status"])
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(images, request, view=self)
        return paginator.get_paginated_response(ImageOutput(page, many=True).data)


# --- Scoring runs ------------------------------------------------------------------------------


class RunListApi(AdminAPIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RunListInput"

        dataset = IdRelatedField(queryset=Dataset.objects.all())
        prompt_version = IdRelatedField(queryset=PromptVersion.objects.all())
        threshold = serializers.FloatField(validators=[validate_threshold], required=False)
        chunk_size = serializers.IntegerField(min_value=1, max_value=100_000, required=False)

    @extend_schema(
        parameters=[OpenApiParameter("dataset", int, required=False)],
        responses=RunOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        runs = ScoringRun.objects.all().order_by("-created_at")
        dataset_id = parse_id_param(request, "dataset")
        if dataset_id is not None:
            runs = runs.filter(dataset_id=dataset_id)
        return Response(RunOutput(runs[:200], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: RunOutput})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        run = scoring_run_start(
            dataset=data.validated_data["dataset"],
            prompt_version=data.validated_data["prompt_version"],
            threshold=data.validated_data.get("threshold", settings.Q16_DEFAULT_THRESHOLD),
            chunk_size=data.validated_data.get("chunk_size"),
            created_by=request_user(request),
        )
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(AdminAPIView):
    @extend_schema(responses=RunDetailOutput)
    def get(self, request: Request, run_id: int) -> Response:
        return Response(RunDetailOutput(ScoringRun.objects.get(pk=run_id)).data)


class RunCancelApi(AdminAPIView):
    """Cancel a pending or running run; cancelling a cancelled one again is a no-op."""

    @extend_schema(**_state_action_schema(RunOutput))
    def post(self, request: Request, run_id: int) -> Response:
        run = scoring_run_cancel(run=ScoringRun.objects.get(pk=run_id), actor=request_user(request))
        return Response(RunOutput(run).data)


class RunResumeApi(AdminAPIView):
    """Queue the chunks of a cancelled or failed run that are not done."""

    @extend_schema(**_state_action_schema(RunOutput))
    def post(self, request: Request, run_id: int) -> Response:
        run = scoring_run_resume(run=ScoringRun.objects.get(pk=run_id), actor=request_user(request))
        return Response(RunOutput(run).data)


# --- Prompt versions and jobs -----------------------------------------------------------------


class PromptVersionListApi(AdminAPIView):
    @extend_schema(responses=PromptVersionOutput(many=True))
    def get(self, request: Request) -> Response:
        versions = prompt_version_list(model_key=request.query_params.get("model_key"))
        return Response(PromptVersionOutput(versions, many=True).data)


class PromptVersionDetailApi(AdminAPIView):
    @extend_schema(responses=PromptVersionOutput)
    def get(self, request: Request, version_id: int) -> Response:
        return Response(PromptVersionOutput(PromptVersion.objects.get(pk=version_id)).data)


class PromptVersionImportApi(AdminAPIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PromptVersionImportInput"

        file = serializers.FileField()
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        model_key = serializers.CharField(max_length=200, required=False, allow_blank=True)

    @extend_schema(request=InputSerializer, responses={201: PromptVersionOutput})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        if upload.size > 16 * 2**20:
            raise ValidationFailed("Prompt files are tiny; this one is over 16 MiB.")
        version = prompt_version_import(
            name=data.validated_data.get("name") or upload.name,
            model_key=data.validated_data.get("model_key") or configured_model_key(),
            data=upload.read(),
            created_by=request_user(request),
        )
        return Response(PromptVersionOutput(version).data, status=status.HTTP_201_CREATED)


class PromptVersionActivateApi(AdminAPIView):
    @extend_schema(
        request=None,
        responses=inline_serializer(
            "ActivationOutput",
            {
                "version": PromptVersionOutput(),
                "rescore_runs": RunOutput(many=True),
                "warning": serializers.CharField(allow_null=True),
            },
        ),
    )
    def post(self, request: Request, version_id: int) -> Response:
        """Activate a version. One worse than its parent or the active version on held-out
        verdicts is activated too (API clients decide for themselves), with a `warning`."""
        version = PromptVersion.objects.get(pk=version_id)
        runs = prompt_version_activate(version=version, created_by=request_user(request))
        version.refresh_from_db()
        output = PromptVersionOutput(version).data
        return Response(
            {
                "version": output,
                "rescore_runs": RunOutput(runs, many=True).data,
                "warning": output["warning"],
            }
        )


class PromptJobListApi(AdminAPIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PromptJobListInput"

        kind = serializers.ChoiceField(choices=PromptJob.Kind.choices)
        name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        # zero_shot
        appropriate = serializers.ListField(
            child=serializers.CharField(max_length=500), required=False, max_length=50
        )
        inappropriate = serializers.ListField(
            child=serializers.CharField(max_length=500), required=False, max_length=50
        )
        # train
        dataset = IdRelatedField(queryset=Dataset.objects.all(), required=False)
        # Not Field.parent: the serializer metaclass moves declared fields off the class.
        parent = IdRelatedField(  # type: ignore[assignment]
            queryset=PromptVersion.objects.all(), required=False
        )
        epochs = tuning_serializer_field("epochs")
        lr = tuning_serializer_field("lr")
        momentum = tuning_serializer_field("momentum")
        batch_size = tuning_serializer_field("batch_size")
        seed = tuning_serializer_field("seed")
        heldout_fraction = serializers.FloatField(
            min_value=HELDOUT_FRACTION_BOUNDS[0],
            max_value=HELDOUT_FRACTION_BOUNDS[1],
            default=DEFAULT_HELDOUT_FRACTION,
        )

    @extend_schema(responses=PromptJobOutput(many=True))
    def get(self, request: Request) -> Response:
        return Response(PromptJobOutput(PromptJob.objects.all()[:200], many=True).data)

    @extend_schema(request=InputSerializer, responses={201: PromptJobOutput})
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if values["kind"] == PromptJob.Kind.ZERO_SHOT:
            job = prompt_job_create_zero_shot(
                model_key=configured_model_key(),
                appropriate=values.get("appropriate") or PAPER_APPROPRIATE,
                inappropriate=values.get("inappropriate") or PAPER_INAPPROPRIATE,
                name=values.get("name", ""),
                created_by=request_user(request),
            )
        else:
            if "dataset" not in values:
                raise ValidationFailed("Training needs a dataset.")
            parent = values.get("parent") or active_prompt_version(model_key=configured_model_key())
            if parent is None:
                raise StateConflict("Training needs a parent prompt version (or an active one).")
            job = prompt_job_create_training(
                dataset=values["dataset"],
                parent=parent,
                config=tuning_config_from(values),
                heldout_fraction=values["heldout_fraction"],
                name=values.get("name", ""),
                created_by=request_user(request),
            )
        return Response(PromptJobOutput(job).data, status=status.HTTP_201_CREATED)


class PromptJobDetailApi(AdminAPIView):
    @extend_schema(responses=PromptJobOutput)
    def get(self, request: Request, job_id: int) -> Response:
        return Response(PromptJobOutput(PromptJob.objects.get(pk=job_id)).data)


class PromptJobCancelApi(AdminAPIView):
    """Cancel a pending or running job; cancelling a cancelled one again is a no-op."""

    @extend_schema(**_state_action_schema(PromptJobOutput))
    def post(self, request: Request, job_id: int) -> Response:
        job = prompt_job_cancel(job=PromptJob.objects.get(pk=job_id), actor=request_user(request))
        return Response(PromptJobOutput(job).data)


class PromptJobResumeApi(AdminAPIView):
    """Run a cancelled or failed job again."""

    @extend_schema(**_state_action_schema(PromptJobOutput))
    def post(self, request: Request, job_id: int) -> Response:
        job = prompt_job_resume(job=PromptJob.objects.get(pk=job_id), actor=request_user(request))
        return Response(PromptJobOutput(job).data)


# --- Exports --------------------------------------------------------------------------------------


class ConfigApi(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ConfigOutput",
            {
                "model_key": serializers.CharField(),
                "default_threshold": serializers.FloatField(),
                "chunk_size": serializers.IntegerField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "model_key": configured_model_key(),
                "default_threshold": settings.Q16_DEFAULT_THRESHOLD,
                "chunk_size": settings.Q16_CHUNK_SIZE,
            }
        )
