"""The admin's usage page: the scope chosen in the query string, the daily numbers and
the geometry of two server-rendered SVG bar charts (no JavaScript, no CDN)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass

from django.http import HttpRequest

from keys.models import APIKey
from logs.selectors import USAGE_DAYS, Usage, usage_report
from logs.services import usage_roll_up
from upstreams.models import Upstream

CHART_WIDTH = 720
CHART_HEIGHT = 220
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 12, 12, 30
# The breakdown tables list this many keys (most requests first) and say how many more.
TOP_KEYS = 50


def nice_ceiling(value: float) -> int:
    """The smallest 1, 2 or 5 x 10^k that is >= value (at least 1): a readable axis top."""
    if value <= 1:
        return 1
    exponent = math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        top = step * 10**exponent
        if top >= value:
            return int(top)
    return int(10 ** (exponent + 1))


def compact_number(value: int) -> str:
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            text = f"{value / limit:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(value)


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    y: float
    height: float
    # The stacked lower part (e.g. errors within requests); 0 when none.
    part_y: float
    part_height: float
    label: str
    tooltip: str


def bar_chart(series: list[tuple[str, int, int]], *, unit: str, part_name: str = "") -> dict:
    """Geometry for a bar chart of (label, value, part) per day; part is stacked at the bottom."""
    plot_w = CHART_WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = CHART_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    top = nice_ceiling(max((v for _, v, _ in series), default=0))
    step = plot_w / max(len(series), 1)
    bottom = MARGIN_TOP + plot_h
    bars = []
    for i, (label, value, part) in enumerate(series):
        height = plot_h * value / top
        part_height = plot_h * min(part, value) / top
        tooltip = f"{label}: {value:,} {unit}"
        if part_name and part:
            tooltip += f" ({part:,} {part_name})"
        bars.append(
            Bar(
                x=round(MARGIN_LEFT + i * step + step * 0.15, 2),
                width=round(step * 0.7, 2),
                y=round(bottom - height, 2),
                height=round(height, 2),
                part_y=round(bottom - part_height, 2),
                part_height=round(part_height, 2),
                label=label,
                tooltip=tooltip,
            )
        )
    # 4 or 5 intervals when they fall on whole numbers (top is 1, 2 or 5 x 10^k).
    intervals = next(n for n in (4, 5, 2, 1) if top % n == 0)
    grid = [
        {
            "y": round(bottom - plot_h * i / intervals, 2),
            "label": compact_number(top * i // intervals),
        }
        for i in range(intervals + 1)
    ]
    # A date under every fifth bar and the last one keeps the axis readable.
    ticks = [
        {"x": round(b.x + b.width / 2, 2), "label": b.label[5:]}
        for i, b in enumerate(bars)
        if i % 5 == 0 or i == len(bars) - 1
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "left": MARGIN_LEFT,
        "right": CHART_WIDTH - MARGIN_RIGHT,
        "bottom": bottom,
        "label_y": bottom + 18,
        "bars": bars,
        "grid": grid,
        "ticks": ticks,
        "unit": unit,
        "part_name": part_name,
    }


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def usage_context(request: HttpRequest) -> dict:
    usage_roll_up(days=USAGE_DAYS)
    report = usage_report(days=USAGE_DAYS)
    key_id = _uuid(request.GET.get("key"))
    upstream_id = None if key_id else _uuid(request.GET.get("upstream"))
    bad_scope = bool(request.GET.get("key") or request.GET.get("upstream")) and not (
        key_id or upstream_id
    )

    by_key = sorted(report.totals_by_key().items(), key=lambda kv: -kv[1].requests)
    by_upstream = sorted(report.totals_by_upstream().items(), key=lambda kv: -kv[1].requests)
    key_ids = {k for k, _ in by_key[:TOP_KEYS] if k} | ({key_id} if key_id else set())
    upstream_ids = {u for u, _ in by_upstream if u} | ({upstream_id} if upstream_id else set())
    keys = {
        k.pk: k
        for k in APIKey.objects.filter(pk__in=key_ids).only("id", "name", "key_prefix", "key_last4")
    }
    upstreams = {u.pk: u for u in Upstream.objects.filter(pk__in=upstream_ids).only("id", "name")}

    if key_id:
        key = keys.get(key_id)
        scope = f"key {key}" if key else "an unknown key"
    elif upstream_id:
        upstream = upstreams.get(upstream_id)
        scope = f"upstream {upstream}" if upstream else "an unknown upstream"
    else:
        scope = "all traffic"

    daily = report.daily(api_key_id=key_id, upstream_id=upstream_id)
    total = Usage()
    for _, usage in daily:
        total.add(usage)
    labels = [day.isoformat() for day, _ in daily]
    return {
        "scope": scope,
        "bad_scope": bad_scope,
        "selected_key": key_id,
        "selected_upstream": upstream_id,
        "days": USAGE_DAYS,
        "first_day": daily[0][0],
        "last_day": daily[-1][0],
        "daily": list(reversed(daily)),  # the table: newest first
        "total": total,
        "requests_chart": bar_chart(
            [(label, u.requests, u.errors) for label, (_, u) in zip(labels, daily, strict=True)],
            unit="requests",
            part_name="errors",
        ),
        "tokens_chart": bar_chart(
            [(label, u.total_tokens, 0) for label, (_, u) in zip(labels, daily, strict=True)],
            unit="tokens",
        ),
        "by_upstream": [
            {"id": u, "name": str(upstreams.get(u, "(none)")) if u else "(none)", "usage": usage}
            for u, usage in by_upstream
        ],
        "by_key": [
            {"id": k, "name": str(keys.get(k, "(deleted)")) if k else "(no key)", "usage": usage}
            for k, usage in by_key[:TOP_KEYS]
        ],
        "more_keys": max(0, len(by_key) - TOP_KEYS),
    }
