"""Query filters of GET /admin/logs. Bad values are a 400, never an empty page."""

from __future__ import annotations

import django_filters

from gatewaysite.api.filters import integer_filter, text_filter, timestamp_filter, uuid_filter
from logs.models import RequestLog


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
