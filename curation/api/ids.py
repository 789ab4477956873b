"""Ids and small integers from users: bounded, ASCII digits only, checked before any query.

Every primary key is a bigint (1 to 2**63 - 1). A number outside that range, or digits that
are not ASCII ("²" passes `str.isdigit()`, "١٢" passes `int()`), must be refused as bad input
(400) instead of reaching the database. The API uses `IdField` (body ids), `IdRelatedField`
(a body id naming a row), `parse_id_param` (query-string ids) and
`BoundedLimitOffsetPagination`; the management commands and the path-id middleware
(config/path_ids.py) use `parse_id`.
"""

from __future__ import annotations

from django.db.models import Model
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_ID = 2**63 - 1
ID_RANGE_MESSAGE = f"An id is a whole number from 1 to {MAX_ID}."


def parse_int(value: object, *, min_value: int, max_value: int) -> int | None:
    """The integer `value` spells in ASCII digits (an int is taken as is) if it lies in
    [min_value, max_value]; None otherwise. Never raises."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        # At most 20 digits: enough for any bigint, and int() never sees a huge string.
        if not (text.isascii() and text.isdigit()) or len(text) > 20:
            return None
        number = int(text)
    else:
        return None
    return number if min_value <= number <= max_value else None


def parse_id(value: object) -> int | None:
    """A primary key from user input (str or int), or None when it cannot be one."""
    return parse_int(value, min_value=1, max_value=MAX_ID)


def parse_id_param(request: Request, name: str) -> int | None:
    """The id in query parameter `name`: None when absent or empty, 400 when malformed."""
    raw = request.query_params.get(name, "")
    if raw == "":
        return None
    number = parse_id(raw)
    if number is None:
        raise ValidationError({name: [ID_RANGE_MESSAGE]})
    return number


class IdField(serializers.IntegerField):
    """A body id: an integer (or ASCII digits) from 1 to MAX_ID."""

    default_error_messages = {"invalid_id": ID_RANGE_MESSAGE}

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not (data.strip().isascii() and data.strip().isdigit()):
            self.fail("invalid_id")
        return super().to_internal_value(data)


class IdRelatedField(serializers.PrimaryKeyRelatedField):
    """A PrimaryKeyRelatedField whose id is range-checked before the lookup."""

    def to_internal_value(self, data) -> Model:
        if parse_id(data) is None:
            raise ValidationError([ID_RANGE_MESSAGE])
        return super().to_internal_value(parse_id(data))


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """limit/offset pagination whose parameters are checked: `limit` from 1 to max_limit,
    `offset` from 0 to MAX_ID; anything else is a 400 naming the parameter."""

    max_limit = 1000

    def _param(self, request: Request, name: str, *, min_value: int, max_value: int):
        raw = request.query_params.get(name, "")
        if raw == "":
            return None
        number = parse_int(raw, min_value=min_value, max_value=max_value)
        if number is None:
            raise ValidationError(
                {name: [f"A whole number from {min_value} to {max_value} is required."]}
            )
        return number

    def get_limit(self, request: Request) -> int | None:
        limit = self._param(request, self.limit_query_param, min_value=1, max_value=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        offset = self._param(request, self.offset_query_param, min_value=0, max_value=MAX_ID)
        return offset or 0
