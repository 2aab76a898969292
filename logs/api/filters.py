"""Query filters of GET /admin/logs. Bad values are a 400, never an empty page."""

from __future__ import annotations

import django_filters
from django import forms
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from gatewaysite.api.filters import (
    BooleanParam,
    TextParam,
    TimestampParam,
    UUIDParam,
    integer_filter,
    text_filter,
    timestamp_filter,
    uuid_filter,
)
from logs.models import RequestLog
from logs.usage import DIMENSIONS


class RequestLogFilter(django_filters.FilterSet):
    api_key_id = uuid_filter(field_name="api_key_id", help_text="Requests made with this key.")
    upstream_id = uuid_filter(field_name="upstream_id", help_text="Requests sent to it.")
    status_code = integer_filter(
        field_name="status_code",
        min_value=0,
        max_value=999,
        help_text="The answer's status; 0: no answer came.",
    )
    model = text_filter(field_name="model", help_text="The model, exactly as requested.")
    since = timestamp_filter(
        field_name="created_at",
        lookup_expr="gte",
        help_text="Created at or after this RFC 3339 time, e.g. 2026-01-31T00:00:00Z.",
    )
    until = timestamp_filter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this RFC 3339 time."
    )

    class Meta:
        model = RequestLog
        fields: list[str] = []


GROUPINGS = [*DIMENSIONS, *(f"{a},{b}" for a in DIMENSIONS for b in DIMENSIONS if a != b)]


class UsageQueryForm(forms.Form):
    """The query of GET /admin/usage; anything malformed is a 400 naming the parameter."""

    group_by = forms.CharField(required=False, strip=False)
    since = TimestampParam(required=False)
    until = TimestampParam(required=False)
    api_key_id = UUIDParam(required=False)
    upstream_id = UUIDParam(required=False)
    model = TextParam(required=False)
    lineage = BooleanParam(required=False)

    def clean_group_by(self) -> list[str]:
        raw = self.cleaned_data.get("group_by") or "day"
        names = raw.split(",")
        if not 1 <= len(names) <= 2 or len(set(names)) != len(names):
            raise forms.ValidationError("Give one or two different dimensions, comma-separated.")
        unknown = [n for n in names if n not in DIMENSIONS]
        if unknown:
            raise forms.ValidationError(f"Must be among {', '.join(DIMENSIONS)}.")
        return names

    def clean_model(self):
        return self.cleaned_data.get("model") or None

    def clean(self):
        data = super().clean()
        data["lineage"] = bool(data.get("lineage"))
        return data

    @staticmethod
    def openapi_parameters() -> list[OpenApiParameter]:
        text = OpenApiTypes.STR
        return [
            OpenApiParameter("group_by", text, enum=GROUPINGS, description=(
                "One or two of `day` (UTC), `key`, `upstream`, `model`, comma-separated; "
                "default `day`.")),
            OpenApiParameter("since", OpenApiTypes.DATETIME, description=(
                "From this RFC 3339 time; default the start of the last 30 UTC days.")),
            OpenApiParameter("until", OpenApiTypes.DATETIME, description=(
                "Before this RFC 3339 time; default now.")),
            OpenApiParameter("api_key_id", OpenApiTypes.UUID, description=(
                "Requests of this key (with `lineage=true`: of every key of its rotation chain).")),
            OpenApiParameter("upstream_id", OpenApiTypes.UUID, description="Requests sent to it."),
            OpenApiParameter("model", text, description="The model, exactly as requested."),
            OpenApiParameter("lineage", OpenApiTypes.BOOL, description=(
                "Count a key and the keys that replaced it by rotation as one: items carry "
                "`key_lineage_id` (the first key's id) instead of `api_key_id`.")),
        ]  # fmt: skip
