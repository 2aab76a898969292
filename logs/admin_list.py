"""The request log list's paginator and filters, each cheap on a table of millions of rows.

The paginator counts a LIMITed subquery, never the whole table; the model filter
offers only models seen in the newest rows (an index walk); the status filter is
ranges on status_code.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Q
from django.utils.functional import cached_property

from logs.models import RequestLog

# Enough to page through a busy hour; older rows are reached by date or filter.
COUNT_CAP = 10_000
# The model filter offers the models seen in this many newest rows (an index walk, not a scan).
MODEL_CHOICES_FROM_NEWEST = 5_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 matches (a LIMITed subquery), never the whole table."""

    cap = COUNT_CAP

    @cached_property
    def _counted(self) -> int:
        return self.object_list.order_by()[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._counted, self.cap)

    @property
    def capped(self) -> bool:
        """True when more rows match than were counted (the list says "more than")."""
        return self._counted > self.cap


class StatusClassFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status_class"
    _ranges = {"2xx": (200, 300), "3xx": (300, 400), "4xx": (400, 500), "5xx": (500, 600)}

    def lookups(self, request, model_admin):
        return [
            ("2xx", "2xx success"),
            ("3xx", "3xx redirect"),
            ("4xx", "4xx client error"),
            ("5xx", "5xx server error"),
            ("0", "0 no answer"),
            ("error", "Errors (4xx, 5xx, no answer)"),
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value == "0":
            return queryset.filter(status_code=0)
        if value == "error":
            return queryset.filter(Q(status_code__gte=400) | Q(status_code=0))
        if value in self._ranges:
            low, high = self._ranges[value]
            return queryset.filter(status_code__gte=low, status_code__lt=high)
        return queryset


class ModelNameFilter(admin.SimpleListFilter):
    title = "model"
    parameter_name = "model"

    def lookups(self, request, model_admin):
        newest = RequestLog.objects.order_by("-created_at", "-id").values_list("model", flat=True)[
            :MODEL_CHOICES_FROM_NEWEST
        ]
        names = {name for name in newest if name}
        if self.value():
            names.add(self.value())
        return [(name, name) for name in sorted(names)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(model=self.value())
        return queryset
