"""Review API, reviewer protection: record reveals (start, end) and a reviewer's exposure status.

A reveal start answers 201 with the reveal's id, or 429 with `reason` "break" or "cap" (and a
Retry-After header): the page must then keep the image blurred. The end accepts JSON or a form
body carrying `csrfmiddlewaretoken`, so that `navigator.sendBeacon` can send it on pagehide.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from curation.api.ids import IdField
from curation.api.permissions import request_user
from reviewer.models import Reveal
from reviewer.selectors.exposure import ExposureStatus, exposure_status_get, next_day_start
from reviewer.services.exposure import (
    ExposureRefused,
    break_message,
    cap_message,
    reveal_end,
    reveal_start,
)


class ExposureStatusOutput(serializers.Serializer):
    class Meta:
        ref_name = "ExposureStatus"

    state = serializers.ChoiceField(choices=["ok", "break", "cap"])
    detail = serializers.CharField()
    reveals_today = serializers.IntegerField()
    images_today = serializers.IntegerField()
    revealed_seconds_today = serializers.IntegerField()
    daily_cap = serializers.IntegerField(allow_null=True)
    images_left_today = serializers.IntegerField(allow_null=True)
    break_after_minutes = serializers.IntegerField(allow_null=True)
    break_minutes = serializers.IntegerField()
    reviewing_minutes = serializers.IntegerField()
    reviewing_since = serializers.DateTimeField(allow_null=True)
    break_due_at = serializers.DateTimeField(allow_null=True)
    break_ends_at = serializers.DateTimeField(allow_null=True)
    break_seconds_left = serializers.IntegerField()
    now = serializers.DateTimeField()


def exposure_status_data(exposure: ExposureStatus) -> dict[str, Any]:
    rules = exposure.rules
    detail = ""
    if exposure.on_break:
        detail = break_message(
            break_after_minutes=rules.break_after_minutes,
            break_minutes=rules.break_minutes,
            seconds_left=exposure.break_seconds_left,
        )
    elif exposure.cap_reached:
        detail = cap_message(cap=rules.daily_cap)
    data = {
        "state": exposure.state,
        "detail": detail,
        "reveals_today": exposure.reveals_today,
        "images_today": exposure.images_today,
        "revealed_seconds_today": exposure.revealed_seconds_today,
        "daily_cap": rules.daily_cap or None,
        "images_left_today": exposure.images_left_today,
        "break_after_minutes": rules.break_after_minutes or None,
        "break_minutes": rules.break_minutes,
        "reviewing_minutes": exposure.reviewing_minutes,
        "reviewing_since": exposure.reviewing_since,
        "break_due_at": exposure.break_due_at,
        "break_ends_at": exposure.break_ends_at,
        "break_seconds_left": exposure.break_seconds_left,
        "now": exposure.now,
    }
    return ExposureStatusOutput(data).data


class ExposureRefusalOutput(serializers.Serializer):
    class Meta:
        ref_name = "ExposureRefusal"

    detail = serializers.CharField()
    reason = serializers.ChoiceField(choices=["break", "cap"])
    exposure = ExposureStatusOutput()


def refusal_response(exc: ExposureRefused) -> Response:
    """429 with the reason, the reviewer's status, and Retry-After (the break's end, or the
    next day for the cap)."""
    body: dict[str, Any] = {"detail": exc.message, "reason": exc.reason}
    headers = {}
    if exc.status is not None:
        body["exposure"] = exposure_status_data(exc.status)
        if exc.status.on_break:
            wait = exc.status.break_seconds_left
        else:
            wait = int((next_day_start(exc.status.now) - exc.status.now).total_seconds()) + 1
        headers["Retry-After"] = str(max(1, wait))
    return Response(body, status=status.HTTP_429_TOO_MANY_REQUESTS, headers=headers)


class RevealStartApi(APIView):
    """Record a reveal (an item's image, or a duplicate's image by id) before the page
    unblurs it; 429 (break or daily cap) means: keep it blurred."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RevealStartInput"

        item_id = IdField(required=False)
        image_id = IdField(required=False)
        view = serializers.ChoiceField(choices=Reveal.View.choices, default=Reveal.View.SINGLE)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if attrs.get("item_id") is None and attrs.get("image_id") is None:
                raise serializers.ValidationError("Give the item_id or the image_id revealed.")
            return attrs

    class OutputSerializer(serializers.ModelSerializer):
        exposure = serializers.SerializerMethodField()

        class Meta:
            ref_name = "RevealStartOutput"
            model = Reveal
            fields = ["id", "item", "image", "view", "revealed_at", "exposure"]

        @extend_schema_field(ExposureStatusOutput)
        def get_exposure(self, reveal: Reveal) -> dict[str, Any]:
            return self.context["exposure"]

    @extend_schema(
        request=InputSerializer,
        responses={
            201: OutputSerializer,
            400: OpenApiResponse(description="Neither an item nor an image, or a bad id."),
            404: OpenApiResponse(description="No such item or image in your datasets."),
            409: OpenApiResponse(description="The item is leased to another reviewer."),
            429: ExposureRefusalOutput,
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reviewer = request_user(request)
        try:
            reveal = reveal_start(
                reviewer=reviewer,
                view=data.validated_data["view"],
                item_id=data.validated_data.get("item_id"),
                image_id=data.validated_data.get("image_id"),
            )
        except ExposureRefused as exc:
            return refusal_response(exc)
        context = {"exposure": exposure_status_data(exposure_status_get(reviewer=reviewer))}
        return Response(
            self.OutputSerializer(reveal, context=context).data, status=status.HTTP_201_CREATED
        )


class RevealEndApi(APIView):
    """Record that a revealed image was hidden again (idempotent; your own reveals only).
    `duration_ms`: the page's own measure, used when shorter than the server's."""

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "RevealEndInput"

        duration_ms = serializers.IntegerField(
            required=False, allow_null=True, min_value=0, max_value=2**31 - 1
        )

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            ref_name = "RevealEndOutput"
            model = Reveal
            fields = ["id", "revealed_at", "hidden_at", "duration_ms"]

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request: Request, reveal_id: int) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reveal = reveal_end(
            reviewer=request_user(request),
            reveal_id=reveal_id,
            duration_ms=data.validated_data.get("duration_ms"),
        )
        return Response(self.OutputSerializer(reveal).data)


class ExposureStatusApi(APIView):
    """Your exposure today and your rules: images revealed, the daily cap, whether a break is
    due (and until when) or when the next one will be."""

    @extend_schema(responses={200: ExposureStatusOutput})
    def get(self, request: Request) -> Response:
        return Response(exposure_status_data(exposure_status_get(reviewer=request_user(request))))
