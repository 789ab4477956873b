"""Output serializers of the curation API, shared by its views (curation/api/views.py).

Fields are only ever added: clients rely on the existing ones. The figures (counts) mean
what curation.glossary.FIGURES says, as on the pages.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from curation.models import Dataset, Export, Image, PromptJob, PromptVersion, ScoringRun
from curation.selectors import (
    prompt_version_warning,
    prompt_version_worse_than,
    run_worker_progress,
)
from worker.engine.tuning_config import TUNING_BOUNDS, TUNING_DEFAULTS


class DatasetOutput(serializers.ModelSerializer):
    # What the pages show as the source: the uploaded archive's name, never its stored path.
    source_label = serializers.CharField(read_only=True)

    class Meta:
        model = Dataset
        fields = [
            "id", "name", "source_kind", "source", "state", "total", "processed", "failed",
            "error", "created_at", "import_started_at", "import_finished_at",
            "source_name", "source_label", "options",
        ]  # fmt: skip


class ImageOutput(serializers.ModelSerializer):
    class Meta:
        model = Image
        fields = [
            "id", "dataset", "relative_path", "source_url", "sha256", "phash", "pdq", "pdq_quality", "width",
            "height", "format", "bytes", "status", "error",
            "sample_key", "metadata", "container", "member_offset", "member_size", "class_label",
        ]  # fmt: skip


class RunOutput(serializers.ModelSerializer):
    images_per_second = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = ScoringRun
        fields = [
            "id", "dataset", "prompt_version", "model_key", "backend", "kind", "threshold", "state",
            "total", "processed", "failed", "flagged", "encoded", "chunks_total", "chunks_done",
            "timings", "error", "created_at", "started_at", "finished_at", "images_per_second",
        ]  # fmt: skip


class WorkerProgressOutput(serializers.Serializer):
    """One worker's share of a run (glossary "run_workers")."""

    worker = serializers.CharField()
    chunks = serializers.ListField(child=serializers.IntegerField(), help_text="Chunk indexes.")
    chunks_done = serializers.IntegerField()
    chunks_in_progress = serializers.IntegerField()
    chunks_failed = serializers.IntegerField()
    images = serializers.IntegerField()
    first_started_at = serializers.DateTimeField(allow_null=True)
    last_finished_at = serializers.DateTimeField(allow_null=True)
    images_per_second = serializers.FloatField(allow_null=True)


class RunDetailOutput(RunOutput):
    """A run with its per-worker progress (the detail only: one query more per run)."""

    workers = serializers.SerializerMethodField()

    class Meta(RunOutput.Meta):
        ref_name = "RunDetail"
        fields = [*RunOutput.Meta.fields, "workers"]

    @extend_schema_field(WorkerProgressOutput(many=True))
    def get_workers(self, run: ScoringRun) -> list[dict[str, Any]]:
        return list(WorkerProgressOutput(run_worker_progress(run=run), many=True).data)


class PromptVersionOutput(serializers.ModelSerializer):
    # Trained versions worse on the same held-out verdicts than these ("parent", "active"),
    # and the warning the prompts page shows before activating one (null when none).
    worse_than = serializers.SerializerMethodField()
    warning = serializers.SerializerMethodField()

    class Meta:
        model = PromptVersion
        fields = [
            "id", "name", "model_key", "dim", "source", "texts", "parent", "metrics",
            "is_active", "activated_at", "created_at", "worse_than", "warning",
        ]  # fmt: skip

    @extend_schema_field(serializers.ListField(child=serializers.ChoiceField(["parent", "active"])))
    def get_worse_than(self, version: PromptVersion) -> list[str]:
        return prompt_version_worse_than(version)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_warning(self, version: PromptVersion) -> str | None:
        return prompt_version_warning(version)


def tuning_serializer_field(name: str) -> serializers.Field:
    """An input field for one training setting: its bounds and default from tuning_config."""
    low, high = TUNING_BOUNDS[name]
    default = getattr(TUNING_DEFAULTS, name)
    if isinstance(default, int):
        return serializers.IntegerField(min_value=int(low), max_value=int(high), default=default)
    return serializers.FloatField(min_value=low, max_value=high, default=default)


class PromptJobOutput(serializers.ModelSerializer):
    class Meta:
        model = PromptJob
        fields = [
            "id", "kind", "model_key", "dataset", "parent", "result", "options", "state",
            "error", "created_at", "finished_at",
        ]  # fmt: skip


class ExportOutput(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()
    provenance_url = serializers.SerializerMethodField()

    class Meta:
        model = Export
        fields = [
            "id", "dataset", "format", "scope", "filters", "copy_kind", "copy_target", "copy_mode",
            "run", "prompt_version", "threshold", "state", "rows", "total", "error",
            "created_at", "finished_at", "download_url", "provenance_url",
        ]  # fmt: skip

    def get_download_url(self, export: Export) -> str | None:
        if export.state != Export.State.SUCCEEDED:
            return None
        return f"/api/exports/{export.pk}/download/"

    def get_provenance_url(self, export: Export) -> str | None:
        if export.state != Export.State.SUCCEEDED or not export.provenance_path:
            return None
        return f"/api/exports/{export.pk}/download/?part=provenance"
