"""Forms of the Users pages: create an account, reset its password, change its role, choose
its datasets. Passwords are checked by Django's validators in the service (they need the
user); the forms check that both entries match."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator

from curation.forms import IdMultipleChoiceField
from curation.services.users import ROLE_ADMIN, ROLE_REVIEWER
from curation.user_selectors import assignable_datasets

ROLE_CHOICES = (
    (ROLE_REVIEWER, "Reviewer: reviews the datasets assigned to them"),
    (ROLE_ADMIN, "Admin: manages datasets, prompts and users, reviews everything"),
)


class _PasswordPair(forms.Form):
    """An optional password typed twice; empty means "generate one"."""

    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to generate one; it is shown once.",
    )
    password_repeat = forms.CharField(
        label="Repeat the password",
        required=False,
        strip=False,
        max_length=128,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        password = cleaned.get("password") or ""
        if password != (cleaned.get("password_repeat") or ""):
            self.add_error("password_repeat", "The two passwords differ.")
        return cleaned

    def chosen_password(self) -> str | None:
        return self.cleaned_data.get("password") or None


class UserCreateForm(_PasswordPair):
    username = forms.CharField(
        label="Username",
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    role = forms.ChoiceField(
        label="Role", choices=ROLE_CHOICES, initial=ROLE_REVIEWER, widget=forms.RadioSelect
    )

    field_order = ["username", "role", "password", "password_repeat"]


class UserPasswordForm(_PasswordPair):
    pass


class UserRoleForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=ROLE_CHOICES, widget=forms.RadioSelect)


class UserDatasetsForm(forms.Form):
    datasets = IdMultipleChoiceField(
        label="Datasets",
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast("forms.ModelMultipleChoiceField[Any]", self.fields["datasets"])
        field.queryset = assignable_datasets()

    def dataset_ids(self) -> list[int]:
        return [dataset.pk for dataset in self.cleaned_data["datasets"]]
