"""Browser forms: they parse and validate input; the views hand the values to services."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.conf import settings

from curation.api.ids import parse_id
from curation.models import Dataset, Export, PromptVersion
from curation.selectors import datasets_visible_to, prompt_version_list, reviewer_candidates
from curation.services.prompt_jobs import PAPER_APPROPRIATE, PAPER_INAPPROPRIATE
from curation.validators import validate_threshold
from worker.engine.tuning_config import (
    DEFAULT_HELDOUT_FRACTION,
    HELDOUT_FRACTION_BOUNDS,
    TUNING_BOUNDS,
    TUNING_DEFAULTS,
)

MAX_PROMPT_FILE_BYTES = 16 * 2**20
MAX_PROMPT_TEXTS = 50


class IdChoiceField(forms.ModelChoiceField):
    """A row chosen by id: a value that cannot be an id (out of the bigint range, digits that
    are not ASCII) is an invalid choice before any query."""

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if parse_id(value) is None:
            raise forms.ValidationError(
                self.error_messages["invalid_choice"], code="invalid_choice"
            )
        return super().to_python(parse_id(value))


class IdMultipleChoiceField(forms.ModelMultipleChoiceField):
    """Rows chosen by id, each checked as IdChoiceField does before the lookup."""

    def clean(self, value):
        if isinstance(value, list | tuple):
            for item in value:
                if parse_id(item) is None:
                    raise forms.ValidationError(
                        self.error_messages["invalid_pk_value"],
                        code="invalid_pk_value",
                        params={"pk": str(item)[:30]},
                    )
            value = [parse_id(item) for item in value]
        return super().clean(value)


class PromptVersionChoiceField(IdChoiceField):
    def label_from_instance(self, obj: PromptVersion) -> str:
        active = " (active)" if obj.is_active else ""
        return f"#{obj.pk} {obj.name}{active}"


def _model_choices(form: forms.Form, name: str) -> forms.ModelChoiceField[Any]:
    """The (multiple) model choice field `name` of `form`, whose `fields` are plain Fields."""
    return cast("forms.ModelChoiceField[Any]", form.fields[name])


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _is_tar_upload(upload: Any) -> bool:
    """The upload reads as a tar archive (its first header), whatever its name says."""
    import tarfile

    try:
        upload.seek(0)
        with tarfile.open(fileobj=upload, mode="r|*") as archive:
            archive.next()
        return True
    except (tarfile.TarError, OSError, EOFError):
        return False
    finally:
        upload.seek(0)


class DatasetCreateForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"autocomplete": "off"}))
    folder = forms.CharField(
        label="Server folder",
        required=False,
        max_length=1024,
        help_text="Absolute path of a folder on the server, e.g. /data/images.",
        widget=forms.TextInput(attrs={"placeholder": "/data/images", "spellcheck": "false"}),
    )
    class_folders = forms.BooleanField(
        label="Class folders (ImageFolder)",
        required=False,
        help_text="Each first-level folder's name becomes its images' class label.",
    )
    archive = forms.FileField(
        label="or upload a .zip or .tar(.gz) archive",
        required=False,
        widget=forms.ClearableFileInput(
            attrs={"accept": ".zip,.tar,.tar.gz,.tgz,application/zip,application/x-tar"}
        ),
    )

    urls = forms.CharField(
        label="or a list of image URLs",
        required=False,
        help_text="http(s) URLs, one per line; internal addresses are refused.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    shards = forms.CharField(
        label="or WebDataset shards",
        required=False,
        help_text="Paths or URLs (s3://...), one per line; patterns like "
        "/data/shards/{00000..00099}.tar. Images stay inside the shards.",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
    )
    url_table = forms.FileField(
        label="or a URL table",
        required=False,
        help_text="CSV, TSV, JSONL or Parquet; the other columns are kept as metadata.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.tsv,.jsonl,.ndjson,.parquet"}),
    )
    url_column = forms.CharField(label="URL column", required=False, initial="url", max_length=200)
    table_format = forms.ChoiceField(
        label="Table format",
        required=False,
        choices=[
            ("", "From the file name"),
            ("csv", "CSV"),
            ("tsv", "TSV"),
            ("jsonl", "JSONL"),
            ("parquet", "Parquet"),
        ],  # fmt: skip
    )
    img2dataset_folder = forms.CharField(
        label="or an img2dataset output folder",
        required=False,
        max_length=1024,
        help_text="Server folder holding its 00000.tar shards and .parquet files.",
        widget=forms.TextInput(attrs={"placeholder": "/data/laion-subset", "spellcheck": "false"}),
    )

    def clean_archive(self):
        archive = self.cleaned_data.get("archive")
        if archive and (
            not archive.name.lower().endswith(ARCHIVE_SUFFIXES)
            or (not archive.name.lower().endswith(".zip") and not _is_tar_upload(archive))
        ):
            raise forms.ValidationError(
                "Upload a .zip archive. (Tar archives, .tar, .tar.gz or .tgz, work too; this file "
                "is not one.)"
            )
        return archive

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        has_folder = bool(cleaned.get("folder", "").strip())
        has_archive = bool(cleaned.get("archive"))
        has_urls = bool(cleaned.get("urls", "").strip())
        others = [
            bool(cleaned.get("shards", "").strip()),
            bool(cleaned.get("url_table")),
            bool(cleaned.get("img2dataset_folder", "").strip()),
        ]
        if has_folder + has_archive + has_urls + sum(others) != 1 and not self.errors:
            raise forms.ValidationError(
                "Give a server folder or upload a .zip archive, or give a URL list, shards, a "
                "URL table or an img2dataset folder (one of them)."
            )
        return cleaned


class ScoringRunForm(forms.Form):
    model = forms.ChoiceField(
        label="CLIP model",
        disabled=True,
        help_text="The model this installation is configured with.",
    )
    prompt_version = PromptVersionChoiceField(queryset=PromptVersion.objects.none())
    threshold = forms.FloatField(
        validators=[validate_threshold],
        help_text="Images scoring at or above this become review items (above 0, at most 1).",
        widget=forms.NumberInput(attrs={"step": "any", "min": "0", "max": "1"}),
    )

    def __init__(self, *args, model_key: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["model"]).choices = [(model_key, model_key)]
        self.fields["model"].initial = model_key
        versions = prompt_version_list(model_key=model_key)
        _model_choices(self, "prompt_version").queryset = versions
        active = next((v for v in versions if v.is_active), None)
        if active is not None:
            self.fields["prompt_version"].initial = active.pk
        self.fields["threshold"].initial = settings.Q16_DEFAULT_THRESHOLD


def tuning_form_field(name: str, **kwargs: Any) -> forms.Field:
    """A form field for one training setting: its bounds and default from tuning_config."""
    low, high = TUNING_BOUNDS[name]
    default = getattr(TUNING_DEFAULTS, name)
    if isinstance(default, int):
        return forms.IntegerField(
            min_value=int(low), max_value=int(high), initial=default, **kwargs
        )
    return forms.FloatField(min_value=low, max_value=high, initial=default, **kwargs)


class TrainingForm(forms.Form):
    """Soft-prompt tuning from the dataset's verdicts; defaults are the paper's settings."""

    parent = PromptVersionChoiceField(
        queryset=PromptVersion.objects.none(),
        label="Start from",
        help_text="The new version starts at this version's prompts.",
    )
    name = forms.CharField(max_length=200, required=False, label="Name (optional)")
    epochs = tuning_form_field("epochs")
    lr = tuning_form_field(
        "lr", label="Learning rate", widget=forms.NumberInput(attrs={"step": "any"})
    )
    momentum = tuning_form_field("momentum", widget=forms.NumberInput(attrs={"step": "any"}))
    batch_size = tuning_form_field("batch_size")
    seed = tuning_form_field("seed")
    heldout_fraction = forms.FloatField(
        label="Held-out fraction",
        min_value=HELDOUT_FRACTION_BOUNDS[0],
        max_value=HELDOUT_FRACTION_BOUNDS[1],
        initial=DEFAULT_HELDOUT_FRACTION,
        widget=forms.NumberInput(attrs={"step": "0.05"}),
        help_text="Share of the verdicts kept aside to compare versions.",
    )

    def __init__(self, *args, model_key: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        versions = prompt_version_list(model_key=model_key)
        _model_choices(self, "parent").queryset = versions
        active = next((v for v in versions if v.is_active), None)
        if active is not None:
            self.fields["parent"].initial = active.pk


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=Export.Format.choices, initial=Export.Format.CSV)
    scope = forms.ChoiceField(choices=Export.Scope.choices, initial=Export.Scope.CONFIRMED)
    categories = forms.CharField(
        required=False,
        max_length=5000,
        label="Categories",
        help_text="Comma-separated; empty: all.",
    )
    classes = forms.CharField(
        required=False, max_length=20000, label="Classes", help_text="Comma-separated; empty: all."
    )
    min_score = forms.FloatField(required=False, min_value=0.0, max_value=1.0, label="Score from")
    max_score = forms.FloatField(required=False, min_value=0.0, max_value=1.0, label="Score to")
    copy_kind = forms.ChoiceField(
        choices=Export.CopyKind.choices, required=False, label="Cleaned copy"
    )
    copy_target = forms.CharField(
        required=False,
        max_length=2048,
        label="Copy to",
        help_text="A new folder under the export folders, or an s3:// URL.",
    )
    copy_mode = forms.ChoiceField(
        choices=Export.CopyMode.choices,
        initial=Export.CopyMode.COPY,
        required=False,
        label="Files",
    )

    def export_options(self) -> dict:
        """The cleaned data as export_create's keyword arguments (format and scope aside)."""
        data = self.cleaned_data
        return {
            "filters": {
                "categories": data.get("categories") or "",
                "classes": data.get("classes") or "",
                "min_score": data.get("min_score"),
                "max_score": data.get("max_score"),
            },
            "copy_kind": data.get("copy_kind") or "",
            "copy_target": data.get("copy_target") or "",
            "copy_mode": data.get("copy_mode") or Export.CopyMode.COPY,
        }


class ZeroShotForm(forms.Form):
    name = forms.CharField(max_length=200, required=False, label="Name (optional)")
    appropriate = forms.CharField(
        label="Appropriate (row 0)",
        initial="\n".join(PAPER_APPROPRIATE),
        help_text="One text per line; the row is the mean of their text features.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    inappropriate = forms.CharField(
        label="Inappropriate (row 1)",
        initial="\n".join(PAPER_INAPPROPRIATE),
        help_text="One text per line.",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )

    def _clean_texts(self, field: str) -> list[str]:
        texts = _lines(self.cleaned_data.get(field, ""))
        if not texts:
            raise forms.ValidationError("Give at least one text.")
        if len(texts) > MAX_PROMPT_TEXTS:
            raise forms.ValidationError(f"At most {MAX_PROMPT_TEXTS} texts.")
        if any(len(text) > 500 for text in texts):
            raise forms.ValidationError("Each text must be at most 500 characters.")
        return texts

    def clean_appropriate(self) -> list[str]:
        return self._clean_texts("appropriate")

    def clean_inappropriate(self) -> list[str]:
        return self._clean_texts("inappropriate")


class PromptImportForm(forms.Form):
    file = forms.FileField(
        label="Prompt file",
        help_text="The paper's format: a pickled float16 array of shape (2, D), row 1 = inappropriate.",
        widget=forms.ClearableFileInput(attrs={"accept": ".p,.pkl,.pickle"}),
    )
    name = forms.CharField(max_length=200, required=False, label="Name (optional)")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_PROMPT_FILE_BYTES:
            raise forms.ValidationError("Prompt files are tiny; this one is over 16 MiB.")
        return upload


class ReviewQueueForm(forms.Form):
    """The optional dataset filter of the review page (?dataset=<id>)."""

    dataset = IdChoiceField(
        queryset=Dataset.objects.order_by("name"),
        required=False,
        empty_label="All datasets",
        label="Queue",
    )

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Only the datasets this user may review are offered (and accepted).
        _model_choices(self, "dataset").queryset = datasets_visible_to(user).order_by("name")


class DatasetReviewersForm(forms.Form):
    """An admin chooses the reviewers (non-staff users) of a dataset."""

    reviewers = IdMultipleChoiceField(
        queryset=None, required=False, widget=forms.CheckboxSelectMultiple, label="Reviewers"
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        _model_choices(self, "reviewers").queryset = reviewer_candidates()
