"""Query filters of GET /admin/upstreams."""

from __future__ import annotations

import django_filters

from gatewaysite.api.filters import boolean_filter, choice_filter, text_filter
from upstreams.models import Provider, Upstream


class UpstreamFilter(django_filters.FilterSet):
    provider = choice_filter(
        field_name="provider", choices=Provider.values, help_text="Upstreams of this provider."
    )
    is_active = boolean_filter(field_name="is_active", help_text="Active or deactivated ones.")
    name = text_filter(field_name="name", lookup_expr="icontains", help_text="Part of the name.")

    class Meta:
        model = Upstream
        fields: list[str] = []
