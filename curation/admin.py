from django.contrib import admin

from curation.models import (
    Dataset,
    DatasetAssignment,
    Export,
    Image,
    PromptJob,
    PromptVersion,
    ScoringRun,
)


class DatasetAssignmentInline(admin.TabularInline):
    model = DatasetAssignment
    fk_name = "dataset"
    extra = 1
    fields = ["user", "assigned_by", "created_at"]
    readonly_fields = ["assigned_by", "created_at"]
    autocomplete_fields = ["user"]


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "state", "total", "processed", "failed", "created_at"]
    list_filter = ["state", "source_kind"]
    search_fields = ["name"]
    readonly_fields = ["created_at", "import_started_at", "import_finished_at"]
    inlines = [DatasetAssignmentInline]


@admin.register(DatasetAssignment)
class DatasetAssignmentAdmin(admin.ModelAdmin):
    list_display = ["dataset", "user", "assigned_by", "created_at"]
    list_filter = ["dataset"]
    search_fields = ["user__username", "dataset__name"]
    autocomplete_fields = ["user", "dataset"]
    readonly_fields = ["assigned_by", "created_at"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.assigned_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["relative_path", "dataset", "status", "format", "width", "height"]
    list_filter = ["status", "format"]
    search_fields = ["relative_path", "sha256"]
    raw_id_fields = ["dataset"]


@admin.register(PromptVersion)
class PromptVersionAdmin(admin.ModelAdmin):
    list_display = ["name", "model_key", "source", "is_active", "created_at"]
    list_filter = ["source", "is_active"]
    exclude = ["vectors"]


@admin.register(ScoringRun)
class ScoringRunAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "prompt_version", "state", "processed", "total", "flagged"]
    list_filter = ["state"]
    raw_id_fields = ["dataset", "prompt_version"]


@admin.register(PromptJob)
class PromptJobAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "state", "created_at"]
    list_filter = ["kind", "state"]


@admin.register(Export)
class ExportAdmin(admin.ModelAdmin):
    list_display = ["id", "dataset", "format", "scope", "state", "rows", "created_at"]
    list_filter = ["state", "format"]
    raw_id_fields = ["dataset"]
