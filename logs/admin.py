"""Request logs in the admin site: read-only, newest first, fast on millions of rows.

What keeps the changelist fast at a million rows (measured by bench/admin_pages.py):
no full-table COUNT (the paginator counts at most COUNT_CAP matches and there is
no unfiltered total; admin_list.py), no facet counts, keys and upstreams joined in
the same query, sorting only by the indexed created_at, and a date hierarchy built
from index probes instead of Django's DISTINCT over every date (admin_dates.py).
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse

from logs import admin_display as display
from logs.admin_dates import RequestLogChangeList
from logs.admin_list import CappedCountPaginator, ModelNameFilter, StatusClassFilter
from logs.export import CONTENT_TYPES, export_lines
from logs.models import RequestLog
from logs.search import log_search
from logs.usage_view import usage_context


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
        try:
            rows = self.get_changelist_instance(request).get_queryset(request)
        except IncorrectLookupParameters:
            # As the list does with a filter it cannot apply (not a 500): back to the list,
            # never to this view without filters, which would export the whole table.
            self.message_user(
                request, "Nothing exported: a filter in the address is not valid.", messages.ERROR
            )
            changelist = reverse(
                "admin:logs_requestlog_changelist", current_app=self.admin_site.name
            )
            return HttpResponseRedirect(f"{changelist}?{ERROR_FLAG}=1")
        response = StreamingHttpResponse(
            export_lines(rows, "csv"), content_type=CONTENT_TYPES["csv"]
        )
        response["Content-Disposition"] = 'attachment; filename="request-logs.csv"'
        return response
