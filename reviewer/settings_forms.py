"""The review settings page's forms: the dataset's rules and prompt policy, and its categories
(a formset: one row per category, in key order, with renames told apart from new names)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from django import forms

from curation.forms import PromptVersionChoiceField
from curation.models import Dataset
from curation.selectors import dataset_latest_run, prompt_version_list
from curation.services.clip_config import configured_model_key
from curation.services.prompt_policy import DEFAULT_RETRAIN_EVERY
from reviewer.models import MAX_AUDIT_SHARE, ReviewSettings

# The review screen's number keys: the first nine categories get 1..9.
CATEGORY_KEYS = 9
MAX_CATEGORIES = 30
MAX_RETRAIN_EVERY = 2**31 - 1


class ReviewSettingsForm(forms.Form):
    required_verdicts = forms.IntegerField(
        label="Verdicts per item (k)",
        min_value=1,
        max_value=10,
        help_text="Independent verdicts an item needs; when they disagree, an admin decides.",
    )
    near_duplicate_distance = forms.IntegerField(
        label="Near-duplicate distance",
        min_value=0,
        max_value=32,
        help_text="Largest perceptual-hash distance (0–32 bits) at which images count as "
        "near-duplicates of each other.",
    )
    audit_share_percent = forms.DecimalField(
        label="Audit share (%)",
        min_value=Decimal(0),
        max_value=Decimal(str(MAX_AUDIT_SHARE * 100)),
        max_digits=4,
        decimal_places=1,
        help_text="Part of the score and uncertain queues given to random images below the "
        f"threshold, to measure what the model misses (0–{MAX_AUDIT_SHARE * 100:g} %).",
        widget=forms.NumberInput(attrs={"step": "0.5"}),
    )
    learn_uncertain_percent = forms.DecimalField(
        label="Learn queue: uncertain share (%)",
        min_value=Decimal(0),
        max_value=Decimal(100),
        max_digits=4,
        decimal_places=1,
        help_text="Part of the learn queue given to images nearest the decision boundary "
        "(over the whole dataset); the rest is highest score first.",
        widget=forms.NumberInput(attrs={"step": "5"}),
    )
    uncertain_diverse = forms.BooleanField(
        label="Uncertain queue skips near-copies",
        required=False,
        help_text="Leave out images nearly identical to one the uncertain queue already holds.",
    )
    auto_retrain = forms.BooleanField(label="Retrain automatically", required=False)
    auto_retrain_every = forms.IntegerField(
        label="Every N verdicts",
        required=False,
        min_value=1,
        max_value=MAX_RETRAIN_EVERY,
        help_text="A candidate is trained after this many new verdicts and goes live only "
        "unless held-out verdicts show it worse than the live version.",
    )
    pinned_version = PromptVersionChoiceField(
        label="Pinned prompt version",
        queryset=None,
        required=False,
        empty_label="Not pinned: follow the active version",
        help_text="A pinned dataset keeps this version: activating another one does not "
        "rescore it. Pinning another version rescores it from cached embeddings.",
    )

    def __init__(self, *args: Any, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        last = dataset_latest_run(dataset=dataset)
        model_key = last.model_key if last is not None else configured_model_key()
        versions = cast("forms.ModelChoiceField[Any]", self.fields["pinned_version"])
        versions.queryset = prompt_version_list(model_key=model_key)

    @staticmethod
    def initial_from(rules: ReviewSettings) -> dict[str, Any]:
        return {
            "required_verdicts": rules.required_verdicts,
            "near_duplicate_distance": rules.near_duplicate_distance,
            "audit_share_percent": Decimal(str(round(rules.audit_share * 100, 1))),
            "learn_uncertain_percent": Decimal(str(round(rules.learn_uncertain_share * 100, 1))),
            "uncertain_diverse": rules.uncertain_diverse,
            "auto_retrain": rules.auto_retrain_every is not None,
            "auto_retrain_every": rules.auto_retrain_every or DEFAULT_RETRAIN_EVERY,
            "pinned_version": rules.pinned_version_id,
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        unset = (
            cleaned.get("auto_retrain_every") is None and "auto_retrain_every" not in self.errors
        )
        if cleaned.get("auto_retrain") and unset:
            self.add_error(
                "auto_retrain_every", "Say after how many verdicts to retrain, or turn it off."
            )
        return cleaned

    def settings(self) -> dict[str, Any]:
        """The review_settings_update keyword arguments of a valid form."""
        values = self.cleaned_data
        return {
            "required_verdicts": values["required_verdicts"],
            "near_duplicate_distance": values["near_duplicate_distance"],
            "audit_share": float(values["audit_share_percent"]) / 100,
            "learn_uncertain_share": float(values["learn_uncertain_percent"]) / 100,
            "uncertain_diverse": bool(values["uncertain_diverse"]),
            "auto_retrain_every": values["auto_retrain_every"] if values["auto_retrain"] else None,
            "pinned_version": values["pinned_version"],
        }


class CategoryRowForm(forms.Form):
    # The name the category had when the page was drawn: a changed name is a rename.
    original = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)
    name = forms.CharField(
        label="Name",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "New category"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        deleting = cleaned.get("DELETE")
        if cleaned.get("original") and not cleaned.get("name", "").strip() and not deleting:
            self.add_error("name", "Give the category a name, or tick Remove.")
        return cleaned


class BaseCategoryFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors) or not self.management_form.is_valid():
            return
        names = self.names()
        if not names:
            raise forms.ValidationError("Keep at least one category.")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise forms.ValidationError(f"Each name once: {', '.join(repeated)}.")
        if len(names) > MAX_CATEGORIES:
            raise forms.ValidationError(f"At most {MAX_CATEGORIES} categories.")

    def _kept(self) -> list[forms.Form]:
        return [form for form in self.ordered_forms if form.cleaned_data.get("name", "").strip()]

    def names(self) -> list[str]:
        """The categories in key order (removed rows and blank new rows left out)."""
        return [form.cleaned_data["name"].strip() for form in self._kept()]

    def renames(self) -> dict[str, str]:
        """{old name: new name} of the rows whose name was changed."""
        pairs = ((f.cleaned_data.get("original", ""), f.cleaned_data["name"]) for f in self._kept())
        return {old: name.strip() for old, name in pairs if old and old != name.strip()}


CategoryFormSet = forms.formset_factory(
    CategoryRowForm,
    formset=BaseCategoryFormSet,
    extra=2,
    can_order=True,
    can_delete=True,
    max_num=MAX_CATEGORIES,
    absolute_max=MAX_CATEGORIES + 10,
    validate_max=True,
)

CATEGORY_PREFIX = "category"


def category_formset(
    data: Any = None, *, categories: list[str] | None = None
) -> BaseCategoryFormSet:
    if data is not None:
        return cast(BaseCategoryFormSet, CategoryFormSet(data, prefix=CATEGORY_PREFIX))
    rows = [{"original": name, "name": name} for name in categories or []]
    return cast(BaseCategoryFormSet, CategoryFormSet(initial=rows, prefix=CATEGORY_PREFIX))
