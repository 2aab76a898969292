"""Strict query-parameter filters and the ``?ordering=`` allow-list.

django-filter's stock fields skip what they cannot read (``?is_active=maybe``
filters nothing, ``?status_code=1.5`` matches nothing): here every value that is
not what the schema says is a 400, so a typo never reads as "no results".
"""

from __future__ import annotations

import re
import uuid

import django_filters
from django import forms
from django.db.models import F
from drf_spectacular.utils import extend_schema_field
from rest_framework.exceptions import ValidationError
from rest_framework.filters import BaseFilterBackend

from gatewaysite.api.fields import NO_NUL_PATTERN, parse_rfc3339

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_INTEGER = re.compile(r"-?[0-9]{1,9}")


def parse_uuid(value: object) -> uuid.UUID | None:
    """The UUID in its canonical 8-4-4-4-12 form, or None for anything else."""
    if isinstance(value, str) and _UUID.fullmatch(value):
        return uuid.UUID(value)
    return None


class _StrictField(forms.Field):
    """Absent means "no filter"; present but empty or malformed is an error."""

    invalid_message = "Invalid value."

    def clean(self, value):
        if value is None:
            return None
        if value == "":
            raise forms.ValidationError("Must not be empty.", code="empty")
        parsed = self.parse(value)
        if parsed is None:
            raise forms.ValidationError(self.invalid_message, code="invalid")
        return parsed

    def parse(self, value: str):
        raise NotImplementedError


class UUIDParam(_StrictField):
    invalid_message = "Must be a UUID."

    def parse(self, value):
        return parse_uuid(value)


class BooleanParam(_StrictField):
    invalid_message = "Must be true or false."

    def parse(self, value):
        return {"true": True, "false": False}.get(value.lower())


class IntegerParam(_StrictField):
    def __init__(self, *, min_value: int, max_value: int, **kwargs):
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value
        self.invalid_message = f"Must be an integer from {min_value} to {max_value}."

    def parse(self, value):
        if not _INTEGER.fullmatch(value):
            return None
        number = int(value)
        return number if self.min_value <= number <= self.max_value else None


class ChoiceParam(_StrictField):
    def __init__(self, *, allowed: list[str], **kwargs):
        super().__init__(**kwargs)
        self.allowed = allowed
        self.invalid_message = f"Must be one of: {', '.join(allowed)}."

    def parse(self, value):
        return value if value in self.allowed else None


class TextParam(forms.CharField):
    def __init__(self, **kwargs):
        super().__init__(strip=False, **kwargs)

    def clean(self, value):
        value = super().clean(value)
        if "\x00" in (value or ""):
            raise forms.ValidationError("Must not contain NUL characters.", code="invalid")
        return value


class TimestampParam(_StrictField):
    invalid_message = "Must be an RFC 3339 timestamp, e.g. 2026-01-31T00:00:00Z."

    def parse(self, value):
        # In a URL an unescaped "+" arrives as a space: "…T00:00:00 02:00" meant "+02:00".
        if len(value) > 6 and value[-6] == " ":
            value = value[:-6] + "+" + value[-5:]
        return parse_rfc3339(value)


class _ParamFilter(django_filters.Filter):
    def __init__(self, *, param: type[forms.Field], **kwargs):
        self.field_class = param
        super().__init__(**kwargs)


def _documented(filter_: django_filters.Filter, schema: dict, help_text: str):
    # Per filter: the exact schema of what it accepts, and its description.
    return extend_schema_field({**schema, "description": help_text})(filter_)


def uuid_filter(*, field_name: str, help_text: str, **kwargs):
    filter_ = _ParamFilter(param=UUIDParam, field_name=field_name, **kwargs)
    return _documented(filter_, {"type": "string", "format": "uuid"}, help_text)


def boolean_filter(*, help_text: str, **kwargs):
    filter_ = _ParamFilter(param=BooleanParam, **kwargs)
    return _documented(filter_, {"type": "boolean"}, help_text)


def timestamp_filter(*, field_name: str, lookup_expr: str, help_text: str):
    filter_ = _ParamFilter(param=TimestampParam, field_name=field_name, lookup_expr=lookup_expr)
    return _documented(filter_, {"type": "string", "format": "date-time"}, help_text)


def text_filter(*, field_name: str, lookup_expr: str = "exact", help_text: str):
    """A text filter; empty means no filter, a NUL character (never storable) is a 400."""
    filter_ = _ParamFilter(param=TextParam, field_name=field_name, lookup_expr=lookup_expr)
    return _documented(filter_, {"type": "string", "pattern": NO_NUL_PATTERN}, help_text)


def choice_filter(*, field_name: str, choices: list[str], help_text: str):
    filter_ = _ParamFilter(param=ChoiceParam, field_name=field_name, allowed=list(choices))
    return _documented(filter_, {"type": "string", "enum": list(choices)}, help_text)


def integer_filter(*, field_name: str, min_value: int, max_value: int, help_text: str):
    filter_ = _ParamFilter(
        param=IntegerParam, field_name=field_name, min_value=min_value, max_value=max_value
    )
    schema = {"type": "integer", "minimum": min_value, "maximum": max_value}
    return _documented(filter_, schema, help_text)


class AllowListOrdering(BaseFilterBackend):
    """``?ordering=<field>`` or ``-<field>`` for the view's ``ordering_fields``; else 400.

    Ties keep the default order (newest first, then the primary key), and nulls
    sort last either way, so pages are stable and alike on SQLite and PostgreSQL.
    """

    param = "ordering"

    def filter_queryset(self, request, queryset, view):
        term = request.query_params.get(self.param)
        if term is None:
            return queryset.order_by(*view.ordering)
        if term not in self.allowed(view):
            raise ValidationError(
                {self.param: [f"Must be one of: {', '.join(self.allowed(view))}."]}
            )
        field = F(term.lstrip("-"))
        first = field.desc(nulls_last=True) if term.startswith("-") else field.asc(nulls_last=True)
        return queryset.order_by(first, *view.ordering)

    @staticmethod
    def allowed(view) -> list[str]:
        return [v for f in view.ordering_fields for v in (f, f"-{f}")]

    def get_schema_operation_parameters(self, view):
        default = ",".join(view.ordering)
        return [
            {
                "name": self.param,
                "required": False,
                "in": "query",
                "description": f"Sort by one field, `-` for descending (default `{default}`).",
                "schema": {"type": "string", "enum": self.allowed(view)},
            }
        ]
