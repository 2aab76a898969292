"""Upstreams in the admin site. Every write goes through upstreams.services, like the admin API,
which writes the history entry and hands back the fresh row the admin answers with."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db.models import Count
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from gatewaysite.admin_saving import ServiceSavedAdmin
from gatewaysite.presentation import status_badge
from upstreams.admin_display import (
    health_badge,
    logs_links,
    recent_traffic,
    timeout_text,
    traffic_text,
    upstream_recent_errors,
)
from upstreams.forms import UpstreamForm
from upstreams.health import health_payload
from upstreams.models import Upstream
from upstreams.selectors import upstream_test
from upstreams.services import upstream_create, upstream_deactivate, upstream_update
from upstreams.validation import base_url_warnings


def _health_of(upstream: Upstream) -> dict:
    try:
        row = upstream.health
    except Upstream.health.RelatedObjectDoesNotExist:
        row = None
    return health_payload(row)


class UpstreamChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        traffic = recent_traffic()  # one grouped query for the page
        for upstream in self.result_list:
            upstream._traffic = traffic.get(upstream.pk)


@admin.register(Upstream)
class UpstreamAdmin(ServiceSavedAdmin, admin.ModelAdmin):
    form = UpstreamForm
    list_display = (
        "name",
        "provider",
        "state",
        "base_url",
        "secret",
        "default",
        "timeout_shown",
        "priority",
        "key_count",
        "traffic",
        "logs",
    )
    list_filter = ("provider", "is_active", "is_default")
    search_fields = ("name", "base_url")
    ordering = ("name",)
    readonly_fields = (
        "secret_hint",
        "health_state",
        "created_at",
        "updated_at",
        "traffic",
        "logs",
        "recent_failures",
    )
    actions = ("deactivate_selected",)
    save_as = False

    def get_fieldsets(self, request, obj=None):
        main = [
            "name",
            "provider",
            "base_url",
            "api_key",
            "is_default",
            "timeout",
            "inject_stream_usage",
        ]
        routing = ["models", "aliases", "priority", "weight"]
        if obj is None:
            return [(None, {"fields": main}), ("Routing", {"fields": routing})]
        return [
            (None, {"fields": [*main, "is_active"]}),
            ("Routing", {"fields": routing}),
            (
                "Health and traffic",
                {"fields": ["health_state", "traffic", "recent_failures", "logs"]},
            ),
            ("Record", {"fields": ["secret_hint", "created_at", "updated_at"]}),
        ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("health")
            .annotate(_key_count=Count("api_keys"))
        )

    @admin.display(description="Secret", ordering="secret_hint")
    def secret(self, obj: Upstream) -> str:
        return obj.secret_hint

    @admin.display(description="Health")
    def health_state(self, obj: Upstream) -> str:
        health = _health_of(obj)
        if health["state"] == "cooling":
            return f"cooling until {health['cooling_until']:%H:%M:%S} UTC"
        failure = health["last_failure"]
        if failure and health["consecutive_failures"]:
            return f"ok ({health['consecutive_failures']} failed in a row: {failure['reason']})"
        return "ok"

    @admin.display(description="Keys", ordering="_key_count")
    def key_count(self, obj: Upstream) -> int:
        return obj._key_count

    @admin.display(description="State")
    def state(self, obj: Upstream) -> str:
        if not obj.is_active:
            return format_html('<span class="gw-badge gw-muted">{}</span>', "inactive")
        return health_badge(_health_of(obj))

    @admin.display(description="Default", boolean=True, ordering="is_default")
    def default(self, obj: Upstream) -> bool:
        return obj.is_default

    @admin.display(description="Timeout", ordering="timeout")
    def timeout_shown(self, obj: Upstream) -> str:
        return timeout_text(obj.timeout)

    @admin.display(description="Last hour")
    def traffic(self, obj: Upstream) -> str:
        traffic = getattr(obj, "_traffic", None)
        if traffic is None and not hasattr(obj, "_traffic"):
            traffic = recent_traffic().get(obj.pk)
        return traffic_text(traffic)

    @admin.display(description="Logs")
    def logs(self, obj: Upstream) -> str:
        return logs_links(obj)

    @admin.display(description="Recent errors (24 h)")
    def recent_failures(self, obj: Upstream) -> str:
        rows = upstream_recent_errors(obj)
        if not rows:
            return "none"
        return format_html_join(
            "",
            '<div class="gw-nowrap"><a href="{}">{}</a> {} <span class="gw-clip" '
            'style="max-width:40em" title="{}">{}</span></div>',
            (
                (
                    reverse("admin:logs_requestlog_change", args=[log.pk]),
                    f"{log.created_at:%Y-%m-%d %H:%M:%S}",
                    status_badge(log.status_code),
                    log.error,
                    log.error or "—",
                )
                for log in rows
            ),
        )

    def get_changelist(self, request, **kwargs):
        return UpstreamChangeList

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "has_upstreams": Upstream.objects.exists()}
        return super().changelist_view(request, extra_context)

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path(
                "<path:object_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name=f"{prefix}_test",
            ),
            *super().get_urls(),
        ]

    def test_view(self, request, object_id):
        """The "Test" button: one GET <base_url>/models with the secret; status and latency."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        upstream = self.get_object(request, object_id)
        if upstream is None or not self.has_change_permission(request, upstream):
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        probe = upstream_test(upstream=upstream)
        status = f"HTTP {probe.status}" if probe.status else "no answer"
        self.message_user(
            request,
            f"Test of {upstream.name}: {status} in {probe.latency_ms} ms. {probe.message}",
            messages.SUCCESS if probe.ok else messages.ERROR,
        )
        return HttpResponseRedirect(
            reverse(
                f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[upstream.pk]
            )
        )

    def has_delete_permission(self, request, obj=None):
        # Soft delete only (the deactivate action): logs and keys keep pointing at it.
        return False

    def save_through_service(self, request, form, current):
        data = form.cleaned_data
        for warning in base_url_warnings(data["base_url"]):
            self.message_user(request, warning, messages.WARNING)
        fields = {
            "name": data["name"],
            "provider": data["provider"],
            "base_url": data["base_url"],
            "is_default": data["is_default"],
            "timeout": data["timeout"],
            "inject_stream_usage": data["inject_stream_usage"],
            "models": data["models"],
            "aliases": data["aliases"],
            "priority": data["priority"],
            "weight": data["weight"],
        }
        if current is None:
            return upstream_create(actor=request.user, api_key=data["api_key"], **fields)
        if data.get("api_key"):
            fields["api_key"] = data["api_key"]
        fields["is_active"] = data["is_active"]
        return upstream_update(upstream=current, actor=request.user, **fields)

    @admin.action(description="Deactivate selected upstreams (soft delete)")
    def deactivate_selected(self, request, queryset):
        count = 0
        for upstream in queryset.filter(is_active=True):
            upstream_deactivate(upstream=upstream, actor=request.user)
            count += 1
        self.message_user(
            request,
            ngettext(
                "Deactivated %d upstream; it routes nothing from now on.",
                "Deactivated %d upstreams; they route nothing from now on.",
                count,
            )
            % count,
            messages.SUCCESS,
        )
