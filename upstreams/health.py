"""Cooling: an upstream that failed UPSTREAM_FAILURES_TO_COOL attempts in a row is tried
after every other for UPSTREAM_COOLDOWN_SECONDS; one success ends it.

The state lives in the database (UpstreamHealth), so every worker of an instance, and
every instance sharing the database, sees the same failures in a row and the same
cooling. Writes happen only when an attempt fails or when a success ends failures,
never once per healthy request. Reads on the hot path come from a per-process view
refreshed at most every REFRESH_SECONDS (one query); a worker applies its own changes
at once. The bound: another worker or instance sees a change within REFRESH_SECONDS,
and failures that land in the same second on different workers all count.

Each failed attempt sends `attempt_failed` and each change of cooling `cooling_changed`
(Django signals, keyword arguments `upstream` (name), `upstream_id` and `reason` or
`cooling`), for the metrics and anything else that wants to know.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, IntegrityError
from django.db.models import F, Q
from django.dispatch import Signal
from django.utils import timezone

from upstreams.models import UpstreamHealth

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 1.0
REASON_MAX_LENGTH = 200

attempt_failed = Signal()  # upstream, upstream_id, reason
cooling_changed = Signal()  # upstream, upstream_id, cooling (bool)


@dataclass(frozen=True, slots=True)
class _Seen:
    failures: int
    cooling_until: dt.datetime | None


# (monotonic time of the read, {upstream_id: _Seen}) for upstreams with failures.
_view: tuple[float, dict[uuid.UUID, _Seen]] = (float("-inf"), {})


def _current_view() -> dict[uuid.UUID, _Seen]:
    global _view
    read_at, seen = _view
    now = time.monotonic()
    if now - read_at < REFRESH_SECONDS:
        return seen
    try:
        rows = UpstreamHealth.objects.filter(consecutive_failures__gt=0).values_list(
            "upstream_id", "consecutive_failures", "cooling_until"
        )
        seen = {pk: _Seen(failures, until) for pk, failures, until in rows}
    except DatabaseError:
        logger.warning("upstream health could not be read; routing on the last known state")
    _view = (now, seen)
    return seen


def _remember(upstream_id: uuid.UUID, seen: _Seen | None) -> None:
    read_at, view = _view
    view = dict(view)
    if seen is None:
        view.pop(upstream_id, None)
    else:
        view[upstream_id] = seen
    globals()["_view"] = (read_at, view)


def cooling_ids(*, now: dt.datetime | None = None) -> frozenset[uuid.UUID]:
    """The upstreams cooling now (as this worker last saw them)."""
    view = _current_view()
    if not view:
        return frozenset()
    now = now or timezone.now()
    return frozenset(
        pk for pk, s in view.items() if s.cooling_until is not None and s.cooling_until > now
    )


def attempt_failure_record(*, upstream_id: uuid.UUID, name: str, reason: str, counts: bool) -> None:
    """One attempt on this upstream failed; `counts` False for a 429 (its limit, not its health).

    Never raises: a database that cannot record it must not fail the request.
    """
    reason = reason[:REASON_MAX_LENGTH]
    attempt_failed.send(
        sender=UpstreamHealth, upstream=name, upstream_id=upstream_id, reason=reason
    )
    if not counts:
        return
    now = timezone.now()
    try:
        failures, until, started = _count_failure(upstream_id, reason, now)
    except DatabaseError:
        logger.warning("the failure of upstream %s could not be recorded", name)
        return
    _remember(upstream_id, _Seen(failures, until))
    if started:
        logger.warning("upstream %s is cooling after %d failures in a row", name, failures)
        cooling_changed.send(
            sender=UpstreamHealth, upstream=name, upstream_id=upstream_id, cooling=True
        )


def _count_failure(upstream_id, reason, now) -> tuple[int, dt.datetime | None, bool]:
    fields = {"last_failure_at": now, "last_failure_reason": reason}
    rows = UpstreamHealth.objects.filter(pk=upstream_id)
    if not rows.update(consecutive_failures=F("consecutive_failures") + 1, **fields):
        try:
            UpstreamHealth.objects.create(upstream_id=upstream_id, consecutive_failures=1, **fields)
        except IntegrityError:  # another worker created it meanwhile
            rows.update(consecutive_failures=F("consecutive_failures") + 1, **fields)
    # Only the one update that finds it not cooling starts the cooling (and signals it).
    started = bool(
        rows.filter(consecutive_failures__gte=settings.UPSTREAM_FAILURES_TO_COOL)
        .filter(Q(cooling_until__isnull=True) | Q(cooling_until__lte=now))
        .update(cooling_until=now + dt.timedelta(seconds=settings.UPSTREAM_COOLDOWN_SECONDS))
    )
    failures, until = rows.values_list("consecutive_failures", "cooling_until").get()
    return failures, until, started


def attempt_success_record(*, upstream_id: uuid.UUID, name: str) -> None:
    """An attempt on this upstream succeeded: failures in a row (and cooling) end.

    Free for a healthy upstream: only one this worker saw failing is written to.
    """
    if upstream_id not in _current_view():
        return
    try:
        rows = UpstreamHealth.objects.filter(pk=upstream_id)
        ended = rows.filter(cooling_until__isnull=False).update(
            consecutive_failures=0, cooling_until=None
        )
        if not ended:
            rows.update(consecutive_failures=0)
    except DatabaseError:
        logger.warning("the recovery of upstream %s could not be recorded", name)
        return
    _remember(upstream_id, None)
    if ended:
        logger.warning("upstream %s answered again; cooling ended", name)
        cooling_changed.send(
            sender=UpstreamHealth, upstream=name, upstream_id=upstream_id, cooling=False
        )


def health_payload(row: UpstreamHealth | None, *, now: dt.datetime | None = None) -> dict:
    """The admin API's `health` of one upstream, from its row (None: never failed)."""
    now = now or timezone.now()
    if row is None:
        return {
            "state": "ok",
            "consecutive_failures": 0,
            "cooling_until": None,
            "last_failure": None,
        }
    cooling = row.cooling_until is not None and row.cooling_until > now
    return {
        "state": "cooling" if cooling else "ok",
        "consecutive_failures": row.consecutive_failures,
        "cooling_until": row.cooling_until if cooling else None,
        "last_failure": (
            {"at": row.last_failure_at, "reason": row.last_failure_reason}
            if row.last_failure_at is not None
            else None
        ),
    }


def upstream_health_all() -> dict[uuid.UUID, dict]:
    """Every upstream's health that is not plain "ok, never failed", by upstream id.

    For the admin API, the admin site and the console; an id missing here is healthy.
    """
    now = timezone.now()
    return {row.upstream_id: health_payload(row, now=now) for row in UpstreamHealth.objects.all()}
