"""Reads of the request log that the admin site uses: usage per day.

The usage report is one GROUP BY (UTC day, key, upstream) over the window, done
by the database; Python only folds those few rows (days x key/upstream pairs in
use) into the views "all traffic", "per key" and "per upstream".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, DateField, Func, Q, Sum
from django.utils import timezone

from logs.models import RequestLog

USAGE_DAYS = 30


class UTCDay(Func):
    """The UTC calendar day of a timestamp, computed natively by the database.

    Django's TruncDate calls a Python function per row on SQLite; there the
    stored text is already UTC ("YYYY-MM-DD HH:MM:SS…"), so its first ten
    characters are the day.
    """

    function = "DATE"
    output_field = DateField()

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="substr(%(expressions)s, 1, 10)")

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="((%(expressions)s) AT TIME ZONE 'UTC')::date"
        )


@dataclass
class Usage:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens


@dataclass
class UsageReport:
    """Usage per UTC day over a window, for all traffic and per key and per upstream."""

    days: list[dt.date]
    _all: dict[dt.date, Usage] = field(default_factory=dict)
    _by_key: dict[uuid.UUID | None, dict[dt.date, Usage]] = field(default_factory=dict)
    _by_upstream: dict[uuid.UUID | None, dict[dt.date, Usage]] = field(default_factory=dict)

    def daily(
        self, *, api_key_id: uuid.UUID | None = None, upstream_id: uuid.UUID | None = None
    ) -> list[tuple[dt.date, Usage]]:
        """One (day, usage) per day of the window, oldest first, zeros included."""
        if api_key_id is not None:
            per_day = self._by_key.get(api_key_id, {})
        elif upstream_id is not None:
            per_day = self._by_upstream.get(upstream_id, {})
        else:
            per_day = self._all
        return [(day, per_day.get(day, Usage())) for day in self.days]

    def totals_by_key(self) -> dict[uuid.UUID | None, Usage]:
        return _totals(self._by_key)

    def totals_by_upstream(self) -> dict[uuid.UUID | None, Usage]:
        return _totals(self._by_upstream)


def _totals(series: dict) -> dict:
    totals: dict = {}
    for owner, per_day in series.items():
        total = Usage()
        for usage in per_day.values():
            total.add(usage)
        totals[owner] = total
    return totals


def usage_report(*, days: int = USAGE_DAYS, today: dt.date | None = None) -> UsageReport:
    """Requests, errors and tokens per UTC day for the last `days` days (today included)."""
    today = today or timezone.now().astimezone(dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time.min, tzinfo=dt.UTC)
    until = dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min, tzinfo=dt.UTC)
    rows = (
        RequestLog.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=UTCDay("created_at"))
        .values("day", "api_key_id", "upstream_id")
        .annotate(
            requests=Count("id"),
            # 0 means no answer came (an unreachable upstream, a client gone).
            errors=Count("id", filter=Q(status_code__gte=400) | Q(status_code=0)),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            total_tokens=Sum("total_tokens"),
        )
        .order_by()
    )
    report = UsageReport(days=[first + dt.timedelta(days=i) for i in range(days)])
    by_key: dict = defaultdict(lambda: defaultdict(Usage))
    by_upstream: dict = defaultdict(lambda: defaultdict(Usage))
    all_days: dict = defaultdict(Usage)
    for row in rows:
        day = row["day"]
        if isinstance(day, str):  # defensive: some drivers hand the text back
            day = dt.date.fromisoformat(day)
        usage = Usage(
            requests=row["requests"],
            errors=row["errors"],
            # Unknown usage (null) is left out of the sums, never counted as tokens.
            prompt_tokens=row["prompt_tokens"] or 0,
            completion_tokens=row["completion_tokens"] or 0,
            total_tokens=row["total_tokens"] or 0,
        )
        all_days[day].add(usage)
        by_key[row["api_key_id"]][day].add(usage)
        by_upstream[row["upstream_id"]][day].add(usage)
    report._all = dict(all_days)
    report._by_key = {k: dict(v) for k, v in by_key.items()}
    report._by_upstream = {k: dict(v) for k, v in by_upstream.items()}
    return report
