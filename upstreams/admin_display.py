"""What the admin site shows of an upstream beyond its form: its recent traffic (requests,
error rate, latency), its health once routing records it, and links to its logs."""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from logs.selectors import RecentTraffic, recent_errors, recent_traffic_by_upstream
from upstreams.models import Upstream

RECENT = dt.timedelta(hours=1)


def health_badge(health: dict) -> str:
    """ok (green), failing (amber: failures in a row, not yet cooling), cooling (red)."""
    failure = health.get("last_failure") or {}
    if health["state"] == "cooling":
        title = f"cooling until {health['cooling_until']:%H:%M:%S} UTC: {failure.get('reason', '')}"
        return format_html('<span class="gw-badge gw-bad" title="{}">cooling</span>', title)
    if health["consecutive_failures"]:
        title = f"{health['consecutive_failures']} failed in a row: {failure.get('reason', '')}"
        return format_html('<span class="gw-badge gw-warn" title="{}">failing</span>', title)
    return format_html('<span class="gw-badge gw-ok">{}</span>', "ok")


def timeout_text(seconds: float | None) -> str:
    """120 s, 2.5 s; the default when unset."""
    if seconds is None:
        return "default"
    return f"{seconds:g} s"


def traffic_text(traffic: RecentTraffic | None) -> str:
    if traffic is None or not traffic.requests:
        return "no requests"
    rate = traffic.error_rate * 100
    latency = f", {traffic.avg_duration_ms:,.0f} ms mean" if traffic.avg_duration_ms else ""
    return f"{traffic.requests:,} requests, {rate:.1f}% errors{latency}"


def recent_traffic() -> dict:
    return recent_traffic_by_upstream(since=timezone.now() - RECENT)


def logs_links(upstream: Upstream) -> str:
    logs = reverse("admin:logs_requestlog_changelist")
    return format_html(
        '<a href="{}?upstream__id__exact={}">all logs</a> · '
        '<a href="{}?upstream__id__exact={}&amp;status_class=error">errors</a> · '
        '<a href="{}?upstream={}&amp;group_by=model&amp;range=30d">usage</a>',
        logs,
        upstream.pk,
        logs,
        upstream.pk,
        reverse("admin:logs_requestlog_usage"),
        upstream.pk,
    )


def upstream_recent_errors(upstream: Upstream) -> list:
    return recent_errors(
        since=timezone.now() - dt.timedelta(days=1), limit=5, upstream_id=upstream.pk
    )
