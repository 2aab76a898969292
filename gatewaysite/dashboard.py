"""The admin site's index: today's and the last 7 days' traffic, who and what cost most,
the upstreams and their state, keys near their budget, and the newest errors.

Each figure links to the filtered list behind it. Sums come from logs.usage.usage_summary
(the daily rollup plus today's logs, the same figures as GET /admin/usage), so the page
costs about the same at a million log rows as at a thousand (bench/admin_pages.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from keys.models import APIKey
from keys.selectors import key_lineages
from limits.selectors import limits_view_for_keys
from logs.selectors import recent_errors, recent_traffic_by_upstream
from logs.usage import usage_summary
from upstreams.health import upstream_health_all
from upstreams.models import Upstream

WEEK_DAYS = 7
TOP = 5
# A key is "near its budget" once this share of it is spent or reserved.
NEAR_BUDGET = 0.8
RECENT_ERRORS = 10
RECENT_TRAFFIC = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Figures:
    requests: int
    errors: int
    total_tokens: int
    cost_usd: Decimal | None

    @classmethod
    def of(cls, sums: dict | None) -> Figures:
        sums = sums or {}
        cost = sums.get("cost_usd")
        return cls(
            requests=sums.get("requests", 0),
            errors=sums.get("errors", 0),
            total_tokens=sums.get("total_tokens", 0),
            cost_usd=Decimal(cost) if cost is not None else None,
        )


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _url(name: str, args=None, **query) -> str:
    url = reverse(f"admin:{name}", args=args)
    query = {k: v for k, v in query.items() if v is not None}
    return f"{url}?{urlencode(query)}" if query else url


def _by_cost(item: dict) -> tuple:
    cost = Decimal(item["cost_usd"]) if item["cost_usd"] is not None else Decimal(-1)
    return (-cost, -item["requests"])


def period_links(since: dt.datetime, until: dt.datetime, preset: str) -> dict:
    """Links from a period's figures to the log list (all, errors only) and the usage page.

    The log list's date filter takes the same `created_at__gte` / `__lt` pair that
    Django's own date filter writes.
    """
    dates = {"created_at__gte": str(since), "created_at__lt": str(until)}
    return {
        "logs": _url("logs_requestlog_changelist", **dates),
        "errors": _url("logs_requestlog_changelist", status_class="error", **dates),
        "usage": _url("logs_requestlog_usage", range=preset),
    }


def _top_keys(since: dt.datetime, now: dt.datetime) -> list[dict]:
    """The key lineages that cost most (a rotated key and its successors count as one)."""
    items = usage_summary(group_by=["key"], since=since, now=now, lineage=True)["items"]
    items = sorted((i for i in items if i["key_lineage_id"]), key=_by_cost)[:TOP]
    lineages = key_lineages()
    roots = {i["key_lineage_id"] for i in items}
    members = [k for k, root in lineages.items() if str(root) in roots]
    current: dict[str, APIKey] = {}
    for key in APIKey.objects.filter(pk__in=members).order_by("created_at"):
        current[str(lineages[key.pk])] = key  # the newest of each lineage wins
    rows = []
    for item in items:
        key = current.get(item["key_lineage_id"])
        rows.append(
            {
                "name": str(key) if key else "(deleted key)",
                "url": _url("keys_apikey_change", args=[key.pk]) if key else None,
                "usage_url": _url("logs_requestlog_usage", range="7d", group_by="key")
                + (f"&key={key.pk}" if key else ""),
                "figures": Figures.of(item),
            }
        )
    return rows


def _top_models(since: dt.datetime, now: dt.datetime) -> list[dict]:
    items = usage_summary(group_by=["model"], since=since, now=now)["items"]
    items = sorted((i for i in items if i["model"]), key=_by_cost)[:TOP]
    return [
        {
            "name": item["model"],
            "logs_url": _url("logs_requestlog_changelist", model=item["model"]),
            "figures": Figures.of(item),
        }
        for item in items
    ]


def _upstreams(now: dt.datetime) -> list[dict]:
    traffic = recent_traffic_by_upstream(since=now - RECENT_TRAFFIC)
    health = upstream_health_all()  # only upstreams that ever failed have a row
    rows = []
    for upstream in Upstream.objects.order_by("-is_active", "name"):
        rows.append(
            {
                "upstream": upstream,
                "url": _url("upstreams_upstream_change", args=[upstream.pk]),
                "logs_url": _url("logs_requestlog_changelist", upstream__id__exact=upstream.pk),
                "traffic": traffic.get(upstream.pk),
                "health": health.get(upstream.pk),
            }
        )
    return rows


def keys_near_budget(now: dt.datetime) -> list[dict]:
    """Usable keys whose budget window is at least NEAR_BUDGET spent or reserved, fullest first.

    The dashboard shows the first ten; /metrics counts them all (gateway_keys_near_budget).
    """
    keys = list(
        APIKey.objects.usable(at=now)
        .filter(
            Q(limits_link__limits__budget_usd__isnull=False)
            | Q(limits_link__limits__budget_tokens__isnull=False)
        )
        .select_related("limits_link__limits")
        .order_by("-created_at")
    )
    views = limits_view_for_keys(keys=keys, now=now)
    rows, seen = [], set()
    for key in keys:
        limits_id = key.limits_link.limits_id
        if limits_id in seen:  # two usable keys of one lineage (a rotation in grace)
            continue
        seen.add(limits_id)
        view = views[key.pk]
        spend = view.spend
        shares = []
        if view.budget_usd:
            used = spend["spent_usd"] + spend["reserved_usd"]
            shares.append((float(used / view.budget_usd), f"${used:.2f} of ${view.budget_usd:.2f}"))
        if view.budget_tokens:
            used = spend["spent_tokens"] + spend["reserved_tokens"]
            shares.append((used / view.budget_tokens, f"{used:,} of {view.budget_tokens:,} tokens"))
        if not shares:
            continue
        share, text = max(shares)
        if share >= NEAR_BUDGET:
            rows.append(
                {
                    "key": key,
                    "url": _url("keys_apikey_change", args=[key.pk]),
                    "percent": min(100.0, share * 100),
                    "text": text,
                    "period": spend["period"],
                    "resets_at": spend["resets_at"],
                }
            )
    return sorted(rows, key=lambda r: -r["percent"])


def next_step() -> dict | None:
    """What a new operator should do next: add an upstream, then a key, then call it."""
    if not Upstream.objects.filter(is_active=True).exists():
        return {"step": "upstream", "url": _url("upstreams_upstream_add")}
    if not APIKey.objects.exists():
        return {"step": "key", "url": _url("keys_apikey_add")}
    return None


def dashboard_context(request) -> dict:
    now = timezone.now()
    today = now.astimezone(dt.UTC).date()
    today_start = _midnight(today)
    tomorrow = _midnight(today + dt.timedelta(days=1))
    week_start = _midnight(today - dt.timedelta(days=WEEK_DAYS - 1))
    days = usage_summary(group_by=["day"], since=week_start, now=now)
    today_sums = next((i for i in days["items"] if i["day"] == today.isoformat()), None)
    return {
        "next_step": next_step(),
        "periods": [
            {
                "title": "Today (UTC)",
                "figures": Figures.of(today_sums),
                "links": period_links(today_start, tomorrow, "today"),
            },
            {
                "title": f"Last {WEEK_DAYS} days",
                "figures": Figures.of(days["totals"]),
                "links": period_links(week_start, tomorrow, "7d"),
            },
        ],
        "top_keys": _top_keys(week_start, now),
        "top_models": _top_models(week_start, now),
        "upstreams": _upstreams(now),
        "near_budget": keys_near_budget(now)[:10],
        "near_budget_percent": int(NEAR_BUDGET * 100),
        "recent_errors": recent_errors(
            since=now - dt.timedelta(days=WEEK_DAYS), limit=RECENT_ERRORS
        ),
        "errors_url": _url("logs_requestlog_changelist", status_class="error"),
        "week_days": WEEK_DAYS,
    }
