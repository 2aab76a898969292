"""Usage grouped by day, key, upstream or model over any time range: GET /admin/usage.

Whole UTC days whose logs are settled are read from the DailyUsage rollup (filled by
logs.services.usage_roll_up, which `manage.py roll_up_usage` and `prune_logs` run: a
read never writes it); every other stretch of the range (today, the edges of a range
that starts or ends mid-day, days not rolled up yet) is summed from the logs by the
database, so the figures are the same before and after a roll-up. At a million rows
with the rollup filled this reads a few thousand rollup rows and one or two days of
logs (bench/admin_pages.py times it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q, Sum
from django.utils import timezone

from keys.selectors import key_lineages
from logs.models import DailyUsage, RequestLog, UsageRollupDay
from logs.selectors import usage_sums

# group_by names and the column each groups by.
DIMENSIONS = {"day": "day", "key": "api_key_id", "upstream": "upstream_id", "model": "model"}
DEFAULT_DAYS = 30
COUNTS = (
    "requests",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
)
COST_PLACES = Decimal("1e-12")


@dataclass
class Sums:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    cost_usd: Decimal | None = None  # None: no request in the group had a known cost

    def add(self, row: dict) -> None:
        for name in COUNTS:
            self.counts[name] += row.get(name) or 0
        cost = row.get("cost_usd")
        if cost is not None:
            self.cost_usd = (self.cost_usd or Decimal(0)) + Decimal(cost)

    def as_dict(self) -> dict:
        cost = None if self.cost_usd is None else str(self.cost_usd.quantize(COST_PLACES))
        return {**self.counts, "cost_usd": cost}


def default_since(now: dt.datetime) -> dt.datetime:
    """The start of the last 30 UTC days, today included."""
    today = now.astimezone(dt.UTC).date()
    return _midnight(today - dt.timedelta(days=DEFAULT_DAYS - 1))


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def _log_sums(start: dt.datetime, end: dt.datetime, columns: list[str], filters: Q) -> list[dict]:
    return usage_sums(
        RequestLog.objects.filter(filters, created_at__gte=start, created_at__lt=end), columns
    )


def _rollup_sums(days: list[dt.date], columns: list[str], filters: Q) -> list[dict]:
    if not days:
        return []
    return list(
        DailyUsage.objects.filter(filters, day__gte=days[0], day__lte=days[-1], day__in=days)
        .values(*columns)
        .annotate(**{name: Sum(name) for name in (*COUNTS, "cost_usd")})
        .order_by()
    )


def _stretches(
    since: dt.datetime, until: dt.datetime, rolled: set[dt.date]
) -> tuple[list[dt.date], list[tuple[dt.datetime, dt.datetime]]]:
    """The whole rolled-up days inside [since, until), and the stretches left to the logs."""
    whole: list[dt.date] = []
    rest: list[tuple[dt.datetime, dt.datetime]] = []
    cursor = since
    day = since.astimezone(dt.UTC).date()
    while _midnight(day) < until:
        start, end = _midnight(day), _midnight(day + dt.timedelta(days=1))
        if start >= since and end <= until and day in rolled:
            if cursor < start:
                rest.append((cursor, start))
            whole.append(day)
            cursor = end
        day += dt.timedelta(days=1)
    if cursor < until:
        rest.append((cursor, until))
    return whole, rest


def usage_summary(
    *,
    group_by: Iterable[str],
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    api_key_id: uuid.UUID | None = None,
    upstream_id: uuid.UUID | None = None,
    model: str | None = None,
    lineage: bool = False,
    now: dt.datetime | None = None,
) -> dict:
    """Requests, errors, tokens and cost per group, and their totals, over [since, until).

    group_by: one or two of DIMENSIONS. lineage: a key and the keys that replaced it
    by rotation count as one (`key_lineage_id`, the first key's id), and api_key_id
    selects the whole lineage of the key it names. Sums skip unknown values; a cost
    is null when no request of the group had one.
    """
    now = now or timezone.now()
    since = since or default_since(now)
    until = min(until or now, now + dt.timedelta(days=1))
    group_by = list(group_by)
    columns = [DIMENSIONS[name] for name in group_by]
    lineages = key_lineages() if lineage else {}

    filters = Q()
    if api_key_id is not None:
        if lineage:
            root = lineages.get(api_key_id, api_key_id)
            members = [k for k, r in lineages.items() if r == root] or [api_key_id]
            filters &= Q(api_key_id__in=members)
        else:
            filters &= Q(api_key_id=api_key_id)
    if upstream_id is not None:
        filters &= Q(upstream_id=upstream_id)
    if model is not None:
        filters &= Q(model=model)

    if since < until:
        first_day = since.astimezone(dt.UTC).date()
        rolled = set(
            UsageRollupDay.objects.filter(
                day__gte=first_day, day__lte=until.astimezone(dt.UTC).date()
            ).values_list("day", flat=True)
        )
        whole, rest = _stretches(since, until, rolled)
        rows = _rollup_sums(whole, columns, filters)
        for start, end in rest:
            rows.extend(_log_sums(start, end, columns, filters))
    else:
        rows = []

    groups: dict[tuple, Sums] = {}
    totals = Sums()
    for row in rows:
        if isinstance(row.get("day"), str):  # some drivers hand the text back
            row["day"] = dt.date.fromisoformat(row["day"])
        if lineage and "api_key_id" in row and row["api_key_id"] is not None:
            row["api_key_id"] = lineages.get(row["api_key_id"], row["api_key_id"])
        key = tuple(row[c] for c in columns)
        groups.setdefault(key, Sums()).add(row)
        totals.add(row)

    names = ["key_lineage_id" if lineage and c == "api_key_id" else c for c in columns]
    items = [
        {**{n: _shown(v) for n, v in zip(names, key, strict=True)}, **sums.as_dict()}
        for key, sums in sorted(groups.items(), key=lambda kv: [_order(v) for v in kv[0]])
    ]
    return {"items": items, "totals": totals.as_dict()}


def _shown(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _order(value) -> tuple:
    # Nulls (requests without a key or upstream) last; otherwise by their text.
    return (value is None, "" if value is None else str(value))
