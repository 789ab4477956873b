"""Hash-bank API (admins): list and create banks, read, replace and delete one, its matches."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from curation.bank_models import BankMatch, HashBank, HashKind
from curation.bank_selectors import bank_list, bank_matches
from curation.errors import ValidationFailed
from curation.services.bank_files import FORMATS, ParsedBank
from curation.services.banks import bank_create, bank_delete, bank_entries_replace

from .permissions import request_user
from .views import AdminAPIView

MATCHES_LIMIT = 1000


class HashBankOutput(serializers.ModelSerializer):
    kinds = serializers.ListField(child=serializers.CharField(), read_only=True)
    entry_count = serializers.IntegerField(read_only=True)
    matched_images = serializers.SerializerMethodField()

    class Meta:
        model = HashBank
        ref_name = "HashBank"
        fields = [
            "id", "name", "description", "source_name", "source_format", "kinds", "entry_count",
            "sha256_count", "phash_count", "pdq_count", "matched_images", "created_at",
            "updated_at", "matched_at", "match_error",
        ]  # fmt: skip

    def get_matched_images(self, bank: HashBank) -> int:
        annotated = getattr(bank, "matched_images", None)
        return annotated if annotated is not None else bank.matches.count()


class BankImportOutput(serializers.Serializer):
    class Meta:
        ref_name = "HashBankImport"

    bank = HashBankOutput()
    format = serializers.CharField()
    entries = serializers.DictField(child=serializers.IntegerField())
    duplicates_merged = serializers.IntegerField()
    skipped_signal_types = serializers.DictField(child=serializers.IntegerField())


class BankMatchOutput(serializers.ModelSerializer):
    class Meta:
        model = BankMatch
        ref_name = "HashBankMatch"
        fields = ["image", "dataset", "bank", "kind", "distance", "value", "matched_at"]


class _FileInput(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(
        choices=HashKind.choices, required=False, allow_blank=True, default=""
    )
    file_format = serializers.ChoiceField(choices=list(FORMATS), required=False, default="auto")


def _read_upload(data: dict) -> bytes:
    upload = data["file"]
    if upload.size > settings.Q16_MAX_BANK_BYTES:
        raise ValidationFailed(
            f"The bank file is {upload.size:,} bytes; the most accepted is "
            f"{settings.Q16_MAX_BANK_BYTES:,}."
        )
    return upload.read()


def _import_output(bank: HashBank, parsed: ParsedBank) -> dict:
    return {
        "bank": HashBankOutput(bank).data,
        "format": parsed.format,
        "entries": parsed.counts(),
        "duplicates_merged": parsed.duplicates,
        "skipped_signal_types": parsed.skipped,
    }


class HashBankListApi(AdminAPIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(_FileInput):
        class Meta:
            ref_name = "HashBankCreateInput"

        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @extend_schema(responses={200: HashBankOutput(many=True)})
    def get(self, request: Request) -> Response:
        return Response(HashBankOutput(bank_list(), many=True).data)

    @extend_schema(request=InputSerializer, responses={201: BankImportOutput})
    def post(self, request: Request) -> Response:
        """Create a bank from a file (read whole: any bad line is a 400 with its number, and
        nothing is kept); every dataset is then matched against it in the background."""
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        bank, parsed = bank_create(
            name=values["name"],
            description=values["description"],
            data=_read_upload(values),
            file_name=values["file"].name or "",
            kind=values["kind"],
            file_format=values["file_format"],
            actor=request_user(request),
        )
        return Response(_import_output(bank, parsed), status=status.HTTP_201_CREATED)


class HashBankDetailApi(AdminAPIView):
    @extend_schema(responses={200: HashBankOutput})
    def get(self, request: Request, bank_id: int) -> Response:
        return Response(HashBankOutput(HashBank.objects.get(pk=bank_id)).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, bank_id: int) -> Response:
        bank_delete(bank=HashBank.objects.get(pk=bank_id), actor=request_user(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class HashBankEntriesApi(AdminAPIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(_FileInput):
        class Meta:
            ref_name = "HashBankEntriesInput"

    @extend_schema(request=InputSerializer, responses={200: BankImportOutput})
    def put(self, request: Request, bank_id: int) -> Response:
        """Replace the bank's entries with a file's; every dataset is matched again."""
        bank = HashBank.objects.get(pk=bank_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        bank, parsed = bank_entries_replace(
            bank=bank,
            data=_read_upload(values),
            file_name=values["file"].name or "",
            kind=values["kind"],
            file_format=values["file_format"],
            actor=request_user(request),
        )
        return Response(_import_output(bank, parsed))


class HashBankMatchesApi(AdminAPIView):
    @extend_schema(responses={200: BankMatchOutput(many=True)})
    def get(self, request: Request, bank_id: int) -> Response:
        """The bank's most recent matches (at most 1000)."""
        bank = HashBank.objects.get(pk=bank_id)
        return Response(
            BankMatchOutput(bank_matches(bank=bank, limit=MATCHES_LIMIT), many=True).data
        )
