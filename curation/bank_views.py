"""Hash-bank pages (admins): the banks, upload a new one, replace, re-match, delete, matches."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from curation.bank_models import HashBank
from curation.bank_selectors import bank_list, bank_matches
from curation.errors import DomainError
from curation.services.bank_files import FORMATS, ParsedBank
from curation.services.banks import (
    bank_create,
    bank_delete,
    bank_entries_replace,
    bank_match_requeue,
)
from curation.views import StaffRequiredMixin, _acting_user

MATCHES_SHOWN = 120
KIND_CHOICES = [
    ("", "Inferred from the file"),
    ("sha256", "SHA-256"),
    ("phash", "pHash"),
    ("pdq", "PDQ"),
]
FORMAT_LABELS = {
    "auto": "Detect from the file",
    "csv": "CSV (this app's blocklist, or HMA / ThreatExchange signals)",
    "json": "JSON blocklist",
    "jsonl": "JSONL blocklist",
    "parquet": "Parquet blocklist",
    "hashes": "One hash a line",
}


class BankFileForm(forms.Form):
    file = forms.FileField(
        label="Bank file",
        help_text="An exported blocklist, a list of hashes (one a line) or an HMA signal CSV.",
    )
    kind = forms.ChoiceField(
        label="Hash kind",
        choices=KIND_CHOICES,
        required=False,
        help_text="Needed for plain lists of 64-hex hashes: SHA-256 and PDQ look alike.",
    )
    file_format = forms.ChoiceField(
        label="Format", choices=[(f, FORMAT_LABELS[f]) for f in FORMATS], initial="auto"
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > settings.Q16_MAX_BANK_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size:,} bytes; the most accepted is "
                f"{settings.Q16_MAX_BANK_BYTES:,}."
            )
        return upload


class BankCreateForm(BankFileForm):
    name = forms.CharField(label="Name", max_length=200)
    description = forms.CharField(
        label="Description", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    field_order = ["name", "description", "file", "kind", "file_format"]


def _parsed_message(bank: HashBank, parsed: ParsedBank, verb: str) -> str:
    counts = ", ".join(f"{n:,} {kind}" for kind, n in parsed.counts().items() if n)
    text = f"Hash bank “{bank.name}” {verb}: {counts}."
    if parsed.duplicates:
        text += f" {parsed.duplicates:,} duplicate hashes merged."
    if parsed.skipped:
        skipped = ", ".join(f"{n:,} {t}" for t, n in sorted(parsed.skipped.items()))
        text += f" Skipped signal types this app does not match: {skipped}."
    return text + " Every dataset is being matched against it."


class BankListView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(request, BankCreateForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        form = BankCreateForm(request.POST, request.FILES)
        if not form.is_valid():
            return self._render(request, form, status=400)
        upload = form.cleaned_data["file"]
        try:
            bank, parsed = bank_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                data=upload.read(),
                file_name=upload.name or "",
                kind=form.cleaned_data["kind"],
                file_format=form.cleaned_data["file_format"],
                actor=_acting_user(request),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
            return self._render(request, form, status=exc.status_code)
        messages.success(request, _parsed_message(bank, parsed, "created"))
        return redirect("hash-bank-detail", bank_id=bank.pk)

    def _render(self, request: HttpRequest, form: BankCreateForm, status: int = 200):
        return render(
            request,
            "curation/banks.html",
            {"banks": bank_list(), "form": form, "max_bytes": settings.Q16_MAX_BANK_BYTES},
            status=status,
        )


def _detail(request: HttpRequest, bank: HashBank, form: BankFileForm, status: int = 200):
    matches = bank_matches(bank=bank, limit=MATCHES_SHOWN)
    return render(
        request,
        "curation/bank_detail.html",
        {
            "bank": bank,
            "matches": matches,
            "matched_images": bank.matches.count(),
            "matches_shown": MATCHES_SHOWN,
            "form": form,
            "phash_distance": settings.Q16_BANK_PHASH_DISTANCE,
            "pdq_distance": settings.Q16_BANK_PDQ_DISTANCE,
            "pdq_min_quality": settings.Q16_BANK_PDQ_MIN_QUALITY,
        },
        status=status,
    )


class BankDetailView(StaffRequiredMixin, View):
    def get(self, request: HttpRequest, bank_id: int) -> HttpResponse:
        return _detail(request, get_object_or_404(HashBank, pk=bank_id), BankFileForm())

    def post(self, request: HttpRequest, bank_id: int) -> HttpResponse:
        """Replace the bank's entries with a new file."""
        bank = get_object_or_404(HashBank, pk=bank_id)
        form = BankFileForm(request.POST, request.FILES)
        if not form.is_valid():
            return _detail(request, bank, form, status=400)
        upload = form.cleaned_data["file"]
        try:
            bank, parsed = bank_entries_replace(
                bank=bank,
                data=upload.read(),
                file_name=upload.name or "",
                kind=form.cleaned_data["kind"],
                file_format=form.cleaned_data["file_format"],
                actor=_acting_user(request),
            )
        except DomainError as exc:
            form.add_error(None, exc.message)
            return _detail(request, bank, form, status=exc.status_code)
        messages.success(request, _parsed_message(bank, parsed, "replaced"))
        return redirect("hash-bank-detail", bank_id=bank.pk)


class BankRematchView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, bank_id: int) -> HttpResponse:
        bank = get_object_or_404(HashBank, pk=bank_id)
        bank_match_requeue(bank=bank, actor=_acting_user(request))
        messages.success(request, f"Matching every dataset against “{bank.name}” is queued.")
        return redirect("hash-bank-detail", bank_id=bank.pk)


class BankDeleteView(StaffRequiredMixin, View):
    def post(self, request: HttpRequest, bank_id: int) -> HttpResponse:
        bank = get_object_or_404(HashBank, pk=bank_id)
        name = bank.name
        bank_delete(bank=bank, actor=_acting_user(request))
        messages.success(
            request,
            f"Hash bank “{name}” deleted. Images only it matched go back to review when flagged.",
        )
        return redirect("hash-bank-list")
