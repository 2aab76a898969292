"""Request logs in the admin site: read-only, newest first, fast on millions of rows.

What keeps the changelist fast at a million rows (measured by bench/admin_pages.py):
no full-table COUNT (the paginator counts at most COUNT_CAP matches and there is
no unfiltered total), no facet counts, keys and upstreams joined in the same
query, sorting only by the indexed created_at, and a date hierarchy built from
index probes instead of Django's DISTINCT over every date.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import formats, timezone
from django.utils.functional import cached_property
from django.utils.text import capfirst

from logs import admin_display as display
from logs.export import CONTENT_TYPES, export_lines
from logs.models import RequestLog
from logs.search import log_search
from logs.usage_view import usage_context

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


class RequestLogChangeList(ChangeList):
    @cached_property
    def cheap_date_hierarchy(self) -> dict:
        """Django's date_hierarchy context, built by seeking along the created_at index.

        Django's own runs DISTINCT over the truncated date of every matching row.
        Here each listed period costs one index seek ("the first log at or after
        t"), so a month with logs on 3 days costs 4 short queries whatever the
        row count. A period is listed when any log falls in it; with other
        filters on, it can hold no match, which the list then says.
        """
        year = _int(self.params.get("created_at__year"))
        month = _int(self.params.get("created_at__month"))
        day = _int(self.params.get("created_at__day"))

        def link(filters):
            return self.get_query_string(filters, ["created_at__"])

        try:
            if year and month and day:
                the_day = dt.date(year, month, day)
            elif year and month:
                dt.date(year, month, 1)
        except ValueError:
            return {"show": False}
        if not (year or month or day):
            oldest, newest = _first_at_or_after(None, None), _last()
            if oldest is None:
                return {"show": False}
            if oldest.year != newest.year:
                years = [d.year for d in _periods(dt.date(oldest.year, 1, 1), None, _next_year)]
                return {
                    "show": True,
                    "back": None,
                    "choices": [
                        {"link": link({"created_at__year": y}), "title": str(y)} for y in years
                    ],
                }
            year = oldest.year
            if oldest.month == newest.month:
                month = oldest.month
        if year and month and day:
            return {
                "show": True,
                "back": {
                    "link": link({"created_at__year": year, "created_at__month": month}),
                    "title": capfirst(formats.date_format(the_day, "YEAR_MONTH_FORMAT")),
                },
                "choices": [{"title": capfirst(formats.date_format(the_day, "MONTH_DAY_FORMAT"))}],
            }
        if year and month:
            first = dt.date(year, month, 1)
            days = _periods(first, _next_month(first), _next_day)
            return {
                "show": True,
                "back": {"link": link({"created_at__year": year}), "title": str(year)},
                "choices": [
                    {
                        "link": link(
                            {
                                "created_at__year": year,
                                "created_at__month": month,
                                "created_at__day": d.day,
                            }
                        ),
                        "title": capfirst(formats.date_format(d, "MONTH_DAY_FORMAT")),
                    }
                    for d in days
                ],
            }
        if year:
            first = dt.date(year, 1, 1)
            months = _periods(first, _next_year(first), _next_month)
            return {
                "show": True,
                "back": {"link": link({}), "title": "All dates"},
                "choices": [
                    {
                        "link": link({"created_at__year": year, "created_at__month": m.month}),
                        "title": capfirst(formats.date_format(m, "YEAR_MONTH_FORMAT")),
                    }
                    for m in months
                ],
            }
        return {"show": False}


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _at(d: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(d, dt.time.min))


def _next_year(d: dt.date) -> dt.date:
    return dt.date(d.year + 1, 1, 1)


def _next_month(d: dt.date) -> dt.date:
    return dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def _first_at_or_after(start: dt.date | None, end: dt.date | None) -> dt.datetime | None:
    rows = RequestLog.objects.all()
    if start is not None:
        rows = rows.filter(created_at__gte=_at(start))
    if end is not None:
        rows = rows.filter(created_at__lt=_at(end))
    value = rows.order_by("created_at", "id").values_list("created_at", flat=True).first()
    return timezone.localtime(value) if value is not None else None


def _last() -> dt.datetime | None:
    value = (
        RequestLog.objects.order_by("-created_at", "-id")
        .values_list("created_at", flat=True)
        .first()
    )
    return timezone.localtime(value) if value is not None else None


def _next_day(d: dt.date) -> dt.date:
    return d + dt.timedelta(days=1)


_PERIOD_START = {
    _next_year: lambda d: dt.date(d.year, 1, 1),
    _next_month: lambda d: dt.date(d.year, d.month, 1),
    _next_day: lambda d: d,
}


def _periods(start: dt.date, end: dt.date | None, following) -> list[dt.date]:
    """The periods from start (to end) that hold a log: one index seek each, plus one."""
    found = []
    cursor = start
    while end is None or cursor < end:
        hit = _first_at_or_after(cursor, end)
        if hit is None:
            break
        period = _PERIOD_START[following](hit.date())
        found.append(period)
        cursor = following(period)
    return found


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = display.LIST_COLUMNS
    list_display_links = (display.when,)
    list_filter = (
        StatusClassFilter,
        ("upstream", display.titled(admin.RelatedFieldListFilter, "upstream")),
        ("api_key", display.titled(admin.RelatedFieldListFilter, "key")),
        ModelNameFilter,
        ("is_stream", display.titled(admin.BooleanFieldListFilter, "stream")),
        "state",
        ("created_at", display.titled(admin.DateFieldListFilter, "date (UTC)")),
    )
    list_select_related = ("api_key", "upstream")
    search_fields = ("request_id",)
    search_help_text = (
        "Search by request id (the X-Gateway-Request-ID header), key prefix (sk-auto-…) "
        "or model name (exact)."
    )
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    sortable_by = (display.when,)  # every other column would sort the whole table
    list_per_page = 100
    paginator = CappedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fieldsets = [
        (
            None,
            {
                "fields": [
                    display.request_id_shown,
                    "created_at",
                    "finished_at",
                    "state",
                    display.status_shown,
                    "error",
                ]
            },
        ),
        (
            "Request",
            {
                "fields": [
                    "method",
                    "path",
                    "model",
                    display.stream_shown,
                    display.key_link,
                    display.upstream_link,
                ]
            },
        ),
        (
            "Usage",
            {
                "fields": [
                    display.prompt_tokens_shown,
                    display.completion_tokens_shown,
                    display.total_tokens_shown,
                    display.cache_read_tokens_shown,
                    display.cache_write_tokens_shown,
                    display.cost_shown,
                ]
            },
        ),
        ("Timing", {"fields": [display.duration_shown, display.ttfb_shown]}),
    ]
    readonly_fields = [f for _, opts in fieldsets for f in opts["fields"]]

    def get_changelist(self, request, **kwargs):
        return RequestLogChangeList

    def get_search_results(self, request, queryset, search_term):
        """A request id, a key prefix or a model name; a term that cannot match says why."""
        found = log_search(queryset, search_term)
        if found.note:
            self.message_user(request, found.note, messages.WARNING)
        return found.rows, False

    # Rows are written by the proxy and removed only by prune_logs.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "usage/", self.admin_site.admin_view(self.usage_view), name="logs_requestlog_usage"
            ),
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="logs_requestlog_export",
            ),
            *super().get_urls(),
        ]

    def usage_view(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Usage",
            **usage_context(request),
        }
        return TemplateResponse(request, "admin/logs/requestlog/usage.html", context)

    def export_view(self, request):
        """The rows the list shows with its current filters, search and dates, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        rows = self.get_changelist_instance(request).get_queryset(request)
        response = StreamingHttpResponse(
            export_lines(rows, "csv"), content_type=CONTENT_TYPES["csv"]
        )
        response["Content-Disposition"] = 'attachment; filename="request-logs.csv"'
        return response
