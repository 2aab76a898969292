"""Reads of the request log that the admin site uses: usage per day.

Usage is summed by the database, GROUP BY (UTC day, key, upstream). Days whose
logs no longer change are summed once into the DailyUsage rollup (by
logs.services.usage_roll_up); the other days are summed from the logs on each view. Python only folds
those few rows (days x key/upstream pairs in use) into the views "all
traffic", "per key" and "per upstream".
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, DateField, Func, Q, Sum
from django.utils import timezone

from logs.models import DailyUsage, RequestLog, UsageRollupDay
from upstreams.validation import MAX_TIMEOUT_SECONDS

USAGE_DAYS = 30
TOKEN_SUMS = ("prompt_tokens", "completion_tokens", "total_tokens")


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


# A day's logs stop changing once every request begun that day has ended: at most
# an upstream timeout (to the headers) plus PROXY_MAX_STREAM_SECONDS, plus margin.
def usage_settled_through(*, now: dt.datetime) -> dt.date:
    """The last UTC day whose logs can no longer change."""
    settle = dt.timedelta(seconds=MAX_TIMEOUT_SECONDS + settings.PROXY_MAX_STREAM_SECONDS + 300)
    return (now - settle).astimezone(dt.UTC).date() - dt.timedelta(days=1)


def usage_window(*, days: int, now: dt.datetime) -> list[dt.date]:
    today = now.astimezone(dt.UTC).date()
    return [today - dt.timedelta(days=days - 1 - i) for i in range(days)]


def _utc_midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def usage_from_logs(*, first: dt.date, last: dt.date) -> list[dict]:
    """Usage per (UTC day, key, upstream) summed by the database from the logs of first..last."""
    rows = (
        RequestLog.objects.filter(
            created_at__gte=_utc_midnight(first),
            created_at__lt=_utc_midnight(last + dt.timedelta(days=1)),
        )
        .annotate(day=UTCDay("created_at"))
        .values("day", "api_key_id", "upstream_id", "model")
        .annotate(
            requests=Count("id"),
            # 0 means no answer came (an unreachable upstream, a client gone).
            errors=Count("id", filter=Q(status_code__gte=400) | Q(status_code=0)),
            prompt_tokens=Sum("prompt_tokens"),
            completion_tokens=Sum("completion_tokens"),
            total_tokens=Sum("total_tokens"),
            cache_read_tokens=Sum("cache_read_tokens"),
            cache_write_tokens=Sum("cache_write_tokens"),
            cost_usd=Sum("cost_usd"),
        )
        .order_by()
    )
    result = []
    for row in rows:
        if isinstance(row["day"], str):  # defensive: some drivers hand the text back
            row["day"] = dt.date.fromisoformat(row["day"])
        # Unknown usage (null) is left out of the sums, never counted as tokens.
        for name in (*TOKEN_SUMS, "cache_read_tokens", "cache_write_tokens"):
            row[name] = row[name] or 0
        result.append(row)
    return result


def _runs(days: list[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Consecutive days as (first, last) pairs: one query per run, not per day."""
    runs: list[tuple[dt.date, dt.date]] = []
    for day in days:
        if runs and runs[-1][1] + dt.timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def usage_report(*, days: int = USAGE_DAYS, now: dt.datetime | None = None) -> UsageReport:
    """Requests, errors and tokens per UTC day for the last `days` days (today included).

    Days in the DailyUsage rollup (see logs.services.usage_roll_up) are read from
    it; every other day (today, at least) is summed from the logs.
    """
    window = usage_window(days=days, now=now or timezone.now())
    rolled = set(
        UsageRollupDay.objects.filter(day__gte=window[0], day__lte=window[-1]).values_list(
            "day", flat=True
        )
    )
    rows: list[dict] = (
        list(
            # The rollup keeps models apart (for /admin/usage); this page sums them away
            # in the database, so Python folds as few rows as before.
            DailyUsage.objects.filter(day__in=rolled)
            .values("day", "api_key_id", "upstream_id")
            .annotate(
                requests=Sum("requests"),
                errors=Sum("errors"),
                prompt_tokens=Sum("prompt_tokens"),
                completion_tokens=Sum("completion_tokens"),
                total_tokens=Sum("total_tokens"),
            )
            .order_by()
        )
        if rolled
        else []
    )
    for first, last in _runs([d for d in window if d not in rolled]):
        rows.extend(usage_from_logs(first=first, last=last))

    report = UsageReport(days=window)
    by_key: dict = defaultdict(lambda: defaultdict(Usage))
    by_upstream: dict = defaultdict(lambda: defaultdict(Usage))
    all_days: dict = defaultdict(Usage)
    for row in rows:
        day = row["day"]
        usage = Usage(
            requests=row["requests"],
            errors=row["errors"],
            prompt_tokens=row["prompt_tokens"],
            completion_tokens=row["completion_tokens"],
            total_tokens=row["total_tokens"],
        )
        all_days[day].add(usage)
        by_key[row["api_key_id"]][day].add(usage)
        by_upstream[row["upstream_id"]][day].add(usage)
    report._all = dict(all_days)
    report._by_key = {k: dict(v) for k, v in by_key.items()}
    report._by_upstream = {k: dict(v) for k, v in by_upstream.items()}
    return report


# --- what the admin's dashboard and upstream pages show --------------------------------

ERRORS = Q(status_code__gte=400) | Q(status_code=0)


@dataclass(frozen=True)
class RecentTraffic:
    """An upstream's requests over a recent stretch: how many, how many failed, how fast."""

    requests: int = 0
    errors: int = 0
    avg_duration_ms: float | None = None
    avg_ttfb_ms: float | None = None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def recent_traffic_by_upstream(*, since: dt.datetime) -> dict[uuid.UUID | None, RecentTraffic]:
    """Requests, errors and mean latencies per upstream since a moment (one grouped query).

    Meant for the last hour: it reads that stretch of the logs along the created_at index
    (a million rows over 45 days hold about a thousand an hour).
    """
    from django.db.models import Avg

    rows = (
        RequestLog.objects.filter(created_at__gte=since, state=RequestLog.State.FINISHED)
        .values("upstream_id")
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=ERRORS),
            avg_duration_ms=Avg("duration_ms"),
            avg_ttfb_ms=Avg("ttfb_ms"),
        )
        .order_by()
    )
    return {
        row.pop("upstream_id"): RecentTraffic(**row)  # type: ignore[arg-type]
        for row in rows
    }


def recent_errors(*, since: dt.datetime, limit: int = 10, upstream_id=None) -> list[RequestLog]:
    """The newest failed requests (4xx, 5xx, no answer) since a moment, key and upstream joined."""
    rows = RequestLog.objects.filter(ERRORS, created_at__gte=since)
    if upstream_id is not None:
        rows = rows.filter(upstream_id=upstream_id)
    return list(rows.select_related("api_key", "upstream").order_by("-created_at", "-id")[:limit])
