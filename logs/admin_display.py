"""How the request log list and a log's page show a row: one line per request at 1366 px.

Columns are plain functions (list_display takes callables), so logs/admin.py keeps the
list's behaviour (filters, search, paging) and this module its looks.
"""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from gatewaysite.presentation import status_badge, usd
from logs.models import RequestLog


def titled(filter_class: type, title: str) -> type:
    """A field's list filter under a title people read ("key", not "api key")."""

    class Titled(filter_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    Titled.__name__ = f"{filter_class.__name__}_{title.split()[0]}"
    return Titled


def _clip(text: str, title: str | None = None) -> str:
    return format_html('<span class="gw-clip" title="{}">{}</span>', title or text, text)


@admin.display(description="Time (UTC)", ordering="created_at")
def when(obj: RequestLog) -> str:
    return format_html(
        '<span class="gw-nowrap" title="{}">{}</span>',
        obj.created_at.isoformat(timespec="milliseconds"),
        f"{obj.created_at:%m-%d %H:%M:%S}",
    )


@admin.display(description="Status")
def status(obj: RequestLog) -> str:
    if obj.state == RequestLog.State.IN_FLIGHT:
        return mark_safe('<span class="gw-badge gw-info" title="still in flight">…</span>')  # noqa: S308
    return status_badge(obj.status_code)


@admin.display(description="Key")
def key(obj: RequestLog) -> str:
    if obj.api_key is None:
        return mark_safe('<span class="gw-quiet">(no key)</span>')  # noqa: S308
    text = f"{obj.api_key.name} · {obj.api_key.key_prefix}"
    return _clip(text)


@admin.display(description="Upstream")
def upstream_name(obj: RequestLog) -> str:
    if obj.upstream is None:
        return mark_safe('<span class="gw-quiet">—</span>')  # noqa: S308
    return _clip(obj.upstream.name)


@admin.display(description="Model")
def model_name(obj: RequestLog) -> str:
    if not obj.model:
        return format_html('<span class="gw-quiet" title="{}">{}</span>', obj.path, obj.method)
    sent = getattr(obj, "upstream_model", "") or ""
    title = f"{obj.model} (sent upstream as {sent})" if sent and sent != obj.model else obj.model
    return _clip(obj.model, title)


@admin.display(description="Tokens")
def tokens(obj: RequestLog) -> str:
    if obj.total_tokens is None:
        return mark_safe('<span class="gw-quiet" title="usage unknown">—</span>')  # noqa: S308
    return format_html(
        '<span class="gw-num" title="{} prompt, {} completion">{}</span>',
        "?" if obj.prompt_tokens is None else f"{obj.prompt_tokens:,}",
        "?" if obj.completion_tokens is None else f"{obj.completion_tokens:,}",
        f"{obj.total_tokens:,}",
    )


@admin.display(description="Cost")
def cost(obj: RequestLog) -> str:
    if obj.cost_usd is None:
        return mark_safe('<span class="gw-quiet" title="tokens or price unknown">—</span>')  # noqa: S308
    return format_html(
        '<span class="gw-num" title="${}">{}</span>',
        f"{obj.cost_usd.normalize():f}",
        usd(obj.cost_usd),
    )


def duration_text(value_ms: int | None) -> str:
    """1,234 ms up to 10 s, then seconds with one decimal."""
    if value_ms is None:
        return "—"
    if value_ms < 10_000:
        return f"{value_ms:,} ms"
    return f"{value_ms / 1000:,.1f} s"


@admin.display(description="Duration")
def duration(obj: RequestLog) -> str:
    title = f"first byte after {duration_text(obj.ttfb_ms)}" if obj.ttfb_ms is not None else ""
    return format_html(
        '<span class="gw-num" title="{}">{}</span>', title, duration_text(obj.duration_ms)
    )


@admin.display(description="Error")
def error_reason(obj: RequestLog) -> str:
    if obj.error:
        return _clip(obj.error)
    if obj.state == RequestLog.State.FINISHED and obj.status_code == 0:
        return _clip("no answer came")
    return ""


LIST_COLUMNS = (when, status, key, upstream_name, model_name, tokens, cost, duration, error_reason)


# --- a log's own page: labels people read, values with their units -----------------------


@admin.display(description="Request id (X-Gateway-Request-ID)")
def request_id_shown(obj: RequestLog) -> str:
    return format_html('<code class="gw-mono">{}</code>', obj.request_id)


@admin.display(description="Status")
def status_shown(obj: RequestLog) -> str:
    if obj.state == RequestLog.State.IN_FLIGHT:
        return "in flight (no answer recorded yet)"
    text = "no answer came" if obj.status_code == 0 else ""
    return format_html("{} {}", status_badge(obj.status_code), text)


@admin.display(description="Key")
def key_link(obj: RequestLog) -> str:
    if obj.api_key is None:
        return "(no key)"
    url = reverse("admin:keys_apikey_change", args=[obj.api_key.pk])
    return format_html('<a href="{}">{}</a>', url, obj.api_key)


@admin.display(description="Upstream")
def upstream_link(obj: RequestLog) -> str:
    if obj.upstream is None:
        return "—"
    url = reverse("admin:upstreams_upstream_change", args=[obj.upstream.pk])
    return format_html('<a href="{}">{}</a>', url, obj.upstream.name)


@admin.display(description="Stream")
def stream_shown(obj: RequestLog) -> str:
    return "yes" if obj.is_stream else "no"


@admin.display(description="Cost (USD)")
def cost_shown(obj: RequestLog) -> str:
    if obj.cost_usd is None:
        return "unknown (no usage, or no price for the model)"
    return f"{usd(obj.cost_usd)} (exactly ${obj.cost_usd.normalize():f})"


@admin.display(description="Duration")
def duration_shown(obj: RequestLog) -> str:
    return duration_text(obj.duration_ms)


@admin.display(description="Time to first byte")
def ttfb_shown(obj: RequestLog) -> str:
    return duration_text(obj.ttfb_ms)


def _count(name: str, label: str):
    @admin.display(description=label)
    def shown(obj: RequestLog) -> str:
        value = getattr(obj, name)
        return "unknown" if value is None else f"{value:,}"

    shown.__name__ = f"{name}_shown"
    return shown


prompt_tokens_shown = _count("prompt_tokens", "Prompt tokens")
completion_tokens_shown = _count("completion_tokens", "Completion tokens")
total_tokens_shown = _count("total_tokens", "Total tokens")
cache_read_tokens_shown = _count("cache_read_tokens", "Cache read tokens")
cache_write_tokens_shown = _count("cache_write_tokens", "Cache write tokens")
