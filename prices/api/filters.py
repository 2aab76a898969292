"""Query filters of GET /admin/prices."""

from __future__ import annotations

import django_filters

from gatewaysite.api.filters import text_filter, uuid_filter
from prices.models import Price


class PriceFilter(django_filters.FilterSet):
    model = text_filter(field_name="model", help_text="The model name or pattern, exactly.")
    upstream_id = uuid_filter(field_name="upstream_id", help_text="Prices of this upstream only.")

    class Meta:
        model = Price
        fields: list[str] = []
