"""The admin's usage page: a date range (presets or custom), a grouping (key, upstream or
model), an optional scope (one key's lineage, one upstream, one model), and the figures
of logs.usage.usage_summary for them: the same numbers GET /admin/usage answers, whose
equivalent query the page shows."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from keys.models import APIKey
from keys.selectors import key_lineages
from logs.usage import usage_summary
from logs.usage_page import bar_chart
from upstreams.models import Upstream

PRESETS = {
    "today": "Today",
    "7d": "7 days",
    "30d": "30 days",
    "month": "This month",
    "last_month": "Last month",
}
DEFAULT_PRESET = "30d"
GROUPS = {"key": "Key", "upstream": "Upstream", "model": "Model"}
DEFAULT_GROUP = "key"
MAX_CUSTOM_DAYS = 400
# The breakdown table lists this many groups (dearest first) and says how many more.
TOP_GROUPS = 50


@dataclass(frozen=True)
class Range:
    preset: str  # a PRESETS name or "custom"
    first: dt.date
    last: dt.date  # inclusive
    note: str = ""

    @property
    def since(self) -> dt.datetime:
        return dt.datetime.combine(self.first, dt.time.min, tzinfo=dt.UTC)

    @property
    def until(self) -> dt.datetime:
        return dt.datetime.combine(self.last + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)

    @property
    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def usage_range(params, *, today: dt.date) -> Range:
    """The range a query string asks for: a preset, or custom `since`/`until` dates (UTC,
    both inclusive). Anything unreadable falls back to 30 days and says why."""
    preset = params.get("range") or DEFAULT_PRESET
    if preset == "custom" or (params.get("since") and "range" not in params):
        try:
            first = dt.date.fromisoformat(params.get("since", ""))
            last = dt.date.fromisoformat(params.get("until") or today.isoformat())
        except ValueError:
            return _preset(DEFAULT_PRESET, today, "Dates are written YYYY-MM-DD; showing 30 days.")
        if last < first:
            return _preset(
                DEFAULT_PRESET, today, "The range ends before it starts; showing 30 days."
            )
        if (last - first).days + 1 > MAX_CUSTOM_DAYS:
            return _preset(
                DEFAULT_PRESET,
                today,
                f"A range is at most {MAX_CUSTOM_DAYS} days; showing 30 days.",
            )
        return Range("custom", first, last)
    if preset not in PRESETS:
        return _preset(DEFAULT_PRESET, today, f"Unknown range “{preset}”; showing 30 days.")
    return _preset(preset, today)


def _preset(preset: str, today: dt.date, note: str = "") -> Range:
    match preset:
        case "today":
            return Range(preset, today, today, note)
        case "7d":
            return Range(preset, today - dt.timedelta(days=6), today, note)
        case "month":
            return Range(preset, today.replace(day=1), today, note)
        case "last_month":
            last = today.replace(day=1) - dt.timedelta(days=1)
            return Range(preset, last.replace(day=1), last, note)
    return Range("30d", today - dt.timedelta(days=29), today, note)


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None


def _money(value) -> Decimal | None:
    return Decimal(value) if value is not None else None


def _with_cost(sums: dict) -> dict:
    return {**sums, "cost": _money(sums["cost_usd"])}


def usage_context(request: HttpRequest, *, now: dt.datetime | None = None) -> dict:
    now = now or timezone.now()
    params = request.GET
    span = usage_range(params, today=now.astimezone(dt.UTC).date())
    group = params.get("group_by") if params.get("group_by") in GROUPS else DEFAULT_GROUP
    notes = [span.note] if span.note else []

    key_id, upstream_id = _uuid(params.get("key")), _uuid(params.get("upstream"))
    model = params.get("model") or None
    for name, parsed in (("key", key_id), ("upstream", upstream_id)):
        if params.get(name) and parsed is None:
            notes.append(f"That {name} id is not valid; it is left out of the scope.")
    filters = {"api_key_id": key_id, "upstream_id": upstream_id, "model": model}
    common = {"since": span.since, "until": span.until, "now": now, "lineage": True, **filters}

    by_day = usage_summary(group_by=["day"], **common)
    groups = usage_summary(group_by=[group], **common)
    names = _names(group, groups["items"], key_id, upstream_id)

    per_day = {item["day"]: item for item in by_day["items"]}
    empty = {"requests": 0, "errors": 0, "total_tokens": 0, "cost_usd": None}
    daily = [(day.isoformat(), per_day.get(day.isoformat(), empty)) for day in span.days]

    column = {"key": "key_lineage_id", "upstream": "upstream_id", "model": "model"}[group]
    rows = []
    for item in sorted(
        groups["items"], key=lambda i: (-(_money(i["cost_usd"]) or -1), -i["requests"])
    ):
        ident = item[column]
        rows.append(
            {
                **_with_cost(item),
                "name": names.get(ident, "(none)") if ident else _nameless(group),
                "scope_url": _scope_url(params, group, ident, names) if ident else None,
            }
        )

    scope = _scope_text(key_id, upstream_id, model, names)
    query = _api_query(span, group, key_id, upstream_id, model)
    return {
        "range": span,
        "presets": [
            (name, label, "?" + _query(params, range=name, since=None, until=None))
            for name, label in PRESETS.items()
        ],
        "groups": [
            (name, label, "?" + _query(params, group_by=name)) for name, label in GROUPS.items()
        ],
        "group": group,
        "group_label": GROUPS[group],
        "hidden_params": [
            (k, v) for k, v in params.items() if k not in ("range", "since", "until")
        ],
        "notes": notes,
        "scope": scope,
        "scoped": bool(key_id or upstream_id or model),
        "all_url": "?" + _query(params, key=None, upstream=None, model=None),
        "daily": [(day, _with_cost(sums)) for day, sums in reversed(daily)],
        "total": _with_cost(by_day["totals"]),
        "rows": rows[:TOP_GROUPS],
        "more_rows": max(0, len(rows) - TOP_GROUPS),
        "requests_chart": bar_chart(
            [(day, s["requests"], s["errors"]) for day, s in daily],
            unit="requests",
            part_name="errors",
            title="Requests per day",
        ),
        "tokens_chart": bar_chart(
            [(day, s["total_tokens"], 0) for day, s in daily], unit="tokens", title="Tokens per day"
        ),
        "cost_chart": bar_chart(
            [(day, float(_money(s["cost_usd"]) or 0), 0) for day, s in daily],
            unit="USD",
            money=True,
            title="Cost per day (USD)",
        ),
        "api_query": query,
        "logs_url": reverse("admin:logs_requestlog_changelist")
        + "?"
        + urlencode(
            {
                k: v
                for k, v in {
                    "created_at__gte": str(span.since),
                    "created_at__lt": str(span.until),
                    "upstream__id__exact": upstream_id,
                    "model": model,
                }.items()
                if v
            }
        ),
    }


def _query(params, **changes) -> str:
    merged = {k: v for k, v in params.items()}
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return urlencode(merged)


def _nameless(group: str) -> str:
    return {"key": "(no key)", "upstream": "(no upstream)", "model": "(no model)"}[group]


def _names(group, items, key_id, upstream_id) -> dict:
    """Display names of the listed groups and of the scope's key and upstream."""
    names: dict = {}
    key_ids = {key_id} if key_id else set()
    upstream_ids = {upstream_id} if upstream_id else set()
    if group == "key":
        key_ids |= {uuid.UUID(i["key_lineage_id"]) for i in items if i["key_lineage_id"]}
    if group == "upstream":
        upstream_ids |= {uuid.UUID(i["upstream_id"]) for i in items if i["upstream_id"]}
    if group == "model":
        names.update({i["model"]: i["model"] for i in items if i["model"]})
    if key_ids:
        # A lineage is named after its current (newest) key.
        lineages = key_lineages()
        roots = {lineages.get(k, k) for k in key_ids}
        members = [k for k, root in lineages.items() if root in roots]
        for key in APIKey.objects.filter(pk__in=members).order_by("created_at"):
            root = lineages.get(key.pk, key.pk)
            names[str(root)] = str(key)
            names[str(key.pk)] = str(key)
    if upstream_ids:
        for upstream in Upstream.objects.filter(pk__in=upstream_ids):
            names[str(upstream.pk)] = upstream.name
    return names


def _scope_url(params, group, ident, names) -> str:
    return "?" + _query(params, **{group: ident})


def _scope_text(key_id, upstream_id, model, names) -> str:
    parts = []
    if key_id:
        parts.append(f"key {names.get(str(key_id), 'unknown')} (with its rotations)")
    if upstream_id:
        parts.append(f"upstream {names.get(str(upstream_id), 'unknown')}")
    if model:
        parts.append(f"model {model}")
    return ", ".join(parts) or "all traffic"


def _api_query(span: Range, group, key_id, upstream_id, model) -> str:
    query = {
        "group_by": group,
        "since": span.since.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "until": span.until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "api_key_id": key_id,
        "upstream_id": upstream_id,
        "model": model,
        "lineage": "true" if group == "key" or key_id else None,
    }
    return "/admin/usage?" + urlencode({k: v for k, v in query.items() if v is not None}, safe=":,")
