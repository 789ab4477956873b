"""Field validators shared by the forms and the API serializers (one rule, one message)."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from worker.engine.scoring import threshold_error


def validate_threshold(value: float) -> None:
    if problem := threshold_error(value):
        raise ValidationError(problem)
