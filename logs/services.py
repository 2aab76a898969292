"""Writes to the request log: a row when a request is accepted, its ending when it ends."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from logs.models import DailyUsage, RequestLog, UsageRollupDay
from logs.selectors import USAGE_DAYS, usage_from_logs, usage_settled_through, usage_window
from logs.sql import insert_row, insert_row_along, update_row

ERROR_MAX_LENGTH = 500


def log_open(
    *,
    request_id: uuid.UUID,
    method: str,
    path: str,
    api_key_id: uuid.UUID | None = None,
    upstream_id: uuid.UUID | None = None,
    model: str = "",
    is_stream: bool = False,
) -> int:
    """Write the in-flight row for an accepted request; return its id.

    A worker killed after this leaves the row behind as unfinished, never nothing.
    """
    return insert_row(_opening(request_id, method, path, api_key_id, upstream_id, model, is_stream))


def log_open_along(
    *,
    along,
    request_id: uuid.UUID,
    method: str,
    path: str,
    api_key_id: uuid.UUID | None = None,
    upstream_id: uuid.UUID | None = None,
    model: str = "",
    is_stream: bool = False,
) -> tuple[int, object]:
    """log_open, with another write made with the row's insert, atomically and in one
    round trip (the proxy's limits admission: limits.counters.Admission.in_database()).
    Return the row's id and what that write returned; the row is written either way.
    """
    return insert_row_along(
        _opening(request_id, method, path, api_key_id, upstream_id, model, is_stream), along
    )


def _opening(request_id, method, path, api_key_id, upstream_id, model, is_stream) -> dict:
    """What a row knows from the moment its request is accepted."""
    return {
        "request_id": request_id,
        "method": method[:10],
        "path": path[:2000],
        "api_key_id": api_key_id,
        "upstream_id": upstream_id,
        "model": model[:200],
        "is_stream": is_stream,
    }


def log_finish(
    *,
    log_id: int,
    status_code: int,
    duration_ms: int | None,
    ttfb_ms: int | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    total_tokens: int | None = None,
    cache_read_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    cost_usd: Decimal | None = None,
    error: str = "",
    upstream_id: uuid.UUID | None = None,
    model: str | None = None,
    upstream_model: str = "",
    attempts: int | None = None,
    also: Sequence[tuple[str, list]] = (),
    only_if: tuple[str, object] | None = None,
) -> bool:
    """Record how a request ended. Token counts left as None stay unknown (null).

    upstream_id: the upstream that answered (after failover); upstream_model: the model
    sent to it when an alias rewrote it; attempts: how many upstreams were tried.
    `also`: other writes (sql, params) made atomically with this one, in the same round
    trip on PostgreSQL (limits.services.limits_settle_statements). `only_if`: (a SELECT
    of one value, the value it must give), read in the same statement: when it gives
    another, the row is left unfinished (`also` is written all the same) and this
    returns False (prices.selectors.prices_version_sql: are the prices of cost_usd
    still the ones in force?). Otherwise returns True.
    """
    fields = {
        "status_code": status_code,
        "duration_ms": duration_ms,
        "ttfb_ms": ttfb_ms,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": total_tokens,
        "cache_read_tokens": cache_read_tokens,
        "cache_write_tokens": cache_write_tokens,
        "cost_usd": cost_usd,
        "error": error[:ERROR_MAX_LENGTH],
        "state": RequestLog.State.FINISHED,
        "finished_at": timezone.now(),
    }
    if upstream_id is not None:
        fields["upstream_id"] = upstream_id
    if model is not None:
        fields["model"] = model[:200]
    if upstream_model:
        fields["upstream_model"] = upstream_model[:200]
    if attempts is not None:
        fields["attempts"] = attempts
    return update_row(log_id, fields, also, only_if)


def log_record(
    *,
    request_id: uuid.UUID,
    method: str,
    path: str,
    status_code: int,
    duration_ms: int | None,
    error: str = "",
    api_key_id: uuid.UUID | None = None,
    upstream_id: uuid.UUID | None = None,
    model: str = "",
    is_stream: bool = False,
) -> int:
    """Write the finished row of a request the gateway answered itself, in one write.

    For refusals (a wrong key, an unknown upstream, a body too large): nothing was
    forwarded, so there is no in-flight stage worth a second write.
    """
    return insert_row(
        {
            **_opening(request_id, method, path, api_key_id, upstream_id, model, is_stream),
            "status_code": status_code,
            "duration_ms": duration_ms,
            "ttfb_ms": duration_ms,
            "error": error[:ERROR_MAX_LENGTH],
            "state": RequestLog.State.FINISHED,
            "finished_at": timezone.now(),
        }
    )


@dataclass(frozen=True)
class PruneResult:
    matched: int
    deleted: int


def logs_prune(
    *,
    cutoff: dt.datetime,
    batch_size: int = 5000,
    dry_run: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> PruneResult:
    """Delete rows created before the cutoff, a batch per transaction, so no lock is held long.

    First every settled day from the oldest of those rows on is summed into the usage
    rollup, however far back, so the usage figures keep what is deleted. on_batch, if
    given, is called after each batch with the rows deleted so far.
    """
    old = RequestLog.objects.older_than(cutoff)
    if dry_run:
        return PruneResult(matched=old.count(), deleted=0)
    oldest = old.order_by("created_at").values_list("created_at", flat=True).first()
    usage_roll_up(since=None if oldest is None else oldest.astimezone(dt.UTC).date())
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(old.order_by("created_at", "id").values_list("id", flat=True)[:batch_size])
            if not ids:
                break
            deleted += RequestLog.objects.filter(id__in=ids).delete()[0]
        if on_batch is not None:
            on_batch(deleted)
    return PruneResult(matched=deleted, deleted=deleted)


def usage_roll_up(
    *, days: int = USAGE_DAYS, now: dt.datetime | None = None, since: dt.date | None = None
) -> int:
    """Sum each settled day of the last `days` (or from `since`, if earlier) into DailyUsage,
    once; return how many days.

    A cache of logs.selectors.usage_from_logs for days whose logs can no longer
    change, so the usage page reads a few rows per day instead of a month of logs
    (1.8 s on SQLite at a million rows without it). The sums outlive pruning.
    """
    now = now or timezone.now()
    settled = usage_settled_through(now=now)
    first = usage_window(days=days, now=now)[0]
    if since is not None and since < first:
        first = since
    wanted = [first + dt.timedelta(days=n) for n in range((settled - first).days + 1)]
    if not wanted:
        return 0
    done = set(
        UsageRollupDay.objects.filter(day__gte=wanted[0], day__lte=wanted[-1]).values_list(
            "day", flat=True
        )
    )
    missing = [d for d in wanted if d not in done]
    if not missing:
        return 0
    # Sum outside the write transaction: on SQLite a write transaction holds the
    # database's one write lock, which the proxy's log writes would wait on.
    rows = [r for r in usage_from_logs(first=missing[0], last=missing[-1]) if r["day"] in missing]
    try:
        with transaction.atomic():
            UsageRollupDay.objects.bulk_create([UsageRollupDay(day=d) for d in missing])
            DailyUsage.objects.bulk_create([DailyUsage(**row) for row in rows], batch_size=500)
    except IntegrityError:
        return 0  # another process summed these days at the same moment; its rows stand
    return len(missing)
