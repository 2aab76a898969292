"""Query filters of GET /admin/keys."""

from __future__ import annotations

import django_filters
from django.utils import timezone

from gatewaysite.api.filters import boolean_filter, text_filter, uuid_filter
from keys.models import APIKey


class KeyFilter(django_filters.FilterSet):
    is_active = boolean_filter(
        method="filter_is_active",
        help_text="true: keys that authenticate now (`is_active` in the answer); false: the rest.",
    )
    name = text_filter(
        field_name="name", lookup_expr="icontains", help_text="Part of the name, any case."
    )
    upstream_id = uuid_filter(field_name="upstreams__id", help_text="Keys that may use it.")

    class Meta:
        model = APIKey
        fields: list[str] = []

    def filter_is_active(self, queryset, name, value):
        usable = APIKey.objects.usable(at=timezone.now()).values("pk")
        return queryset.filter(pk__in=usable) if value else queryset.exclude(pk__in=usable)
