"""Reads of the request log: the one rule that sums usage from it, and the recent
traffic and errors the admin's dashboard and upstream pages show.

Usage is summed by the database (usage_sums). Days whose logs no longer change are
summed once into the DailyUsage rollup (logs.services.usage_roll_up, from
usage_from_logs); logs.usage.usage_summary reads the rollup and sums every other
stretch from the logs, with the same rule.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count, DateField, Func, Q, QuerySet, Sum

from logs.models import RequestLog
from upstreams.validation import MAX_TIMEOUT_SECONDS

USAGE_DAYS = 30
TOKEN_SUMS = (
    "prompt_tokens",
    "completion_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "total_tokens",
)
# 0 means no answer came (an unreachable upstream, a client gone).
ERRORS = Q(status_code__gte=400) | Q(status_code=0)


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


def usage_sums(rows: QuerySet, columns: Sequence[str]) -> list[dict]:
    """Requests, errors, tokens and cost of the log rows per group of `columns` ("day" is
    the UTC day). Errors are 4xx, 5xx and no answer (status 0); unknown tokens and costs
    (null) are left out of the sums, never counted as zero: a group with none is null."""
    if "day" in columns:
        rows = rows.annotate(day=UTCDay("created_at"))
    result = list(
        rows.values(*columns)
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=ERRORS),
            **{name: Sum(name) for name in TOKEN_SUMS},
            cost_usd=Sum("cost_usd"),
        )
        .order_by()
    )
    for row in result:
        if isinstance(row.get("day"), str):  # defensive: some drivers hand the text back
            row["day"] = dt.date.fromisoformat(row["day"])
    return result


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
    """Usage per (UTC day, key, upstream, model) of the logs of first..last, as DailyUsage
    rows: unknown tokens are summed as 0 there (its token columns are not null)."""
    rows = RequestLog.objects.filter(
        created_at__gte=_utc_midnight(first),
        created_at__lt=_utc_midnight(last + dt.timedelta(days=1)),
    )
    result = usage_sums(rows, ["day", "api_key_id", "upstream_id", "model"])
    for row in result:
        for name in TOKEN_SUMS:
            row[name] = row[name] or 0
    return result


# --- what the admin's dashboard and upstream pages show --------------------------------


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
